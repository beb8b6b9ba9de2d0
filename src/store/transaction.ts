import { sql, type Kysely } from 'kysely';
import type { Store } from './connect.js';
import type { Database } from './schema.js';

export type Tx = Kysely<Database>;

/**
 * Runs `fn` in one transaction on one connection. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken
 * up front, so concurrent processes queue on busy_timeout instead of failing when a read upgrades to a write.
 */
export async function transaction<T>(store: Store, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return store.db.connection().execute(async (conn) => {
    await sql.raw(store.dialect === 'sqlite' ? 'begin immediate' : 'begin').execute(conn);
    try {
      const result = await fn(conn);
      await sql.raw('commit').execute(conn);
      return result;
    } catch (err) {
      await sql.raw('rollback').execute(conn).catch(() => undefined);
      throw err;
    }
  });
}
