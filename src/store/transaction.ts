import { CompiledQuery, type Kysely } from 'kysely';
import type { Store } from './connect.js';
import type { Database } from './schema.js';

export type Tx = Kysely<Database>;

const BEGIN = CompiledQuery.raw('begin');
const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');

/**
 * Runs `fn` in one transaction on one connection. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
 * up front, so concurrent processes queue on busy_timeout instead of failing when a read upgrades to a write.
 */
export async function transaction<T>(store: Store, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return store.db.connection().execute(async (conn) => {
    await conn.executeQuery(store.dialect === 'sqlite' ? BEGIN_IMMEDIATE : BEGIN);
    try {
      const result = await fn(conn);
      await conn.executeQuery(COMMIT);
      return result;
    } catch (err) {
      await conn.executeQuery(ROLLBACK).catch(() => undefined);
      throw err;
    }
  });
}
