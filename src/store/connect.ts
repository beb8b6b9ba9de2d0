import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { OWNER_ONLY } from '../file-modes.js';
import { Checkpointer } from './checkpointer.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** The PostgreSQL pool, for LISTEN connections; undefined on SQLite. */
  pool?: pg.Pool;
  /** Where the data lives, for log lines: the SQLite file or the PostgreSQL URL without password. */
  location: string;
  /**
   * SQLite: holds a lock no other process can hold at once, until the returned release is called. Kysely's
   * migrator takes no lock on SQLite and runs migrations outside one transaction, so two processes starting on
   * a new file would both run them. PostgreSQL's migrator locks by itself.
   */
  exclusively?<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface StoreOptions {
  databaseUrl?: string;
  dataDir: string;
  /** PostgreSQL pool size. */
  poolSize?: number;
  /** PostgreSQL: longest wait for a connection, and for one statement's answer. */
  timeoutMs?: number;
}

// PostgreSQL returns bigint (int8) as a string to avoid precision loss; pixq's bigints are millisecond
// timestamps and counts, all far below 2^53.
pg.types.setTypeParser(20, Number);

export async function openStore(options: StoreOptions): Promise<Store> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? 10, options.timeoutMs ?? 30_000)
    : openSqlite(options.dataDir);
}

function openSqlite(dataDir: string): Store {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'pixq.db');
  restrictToOwner(file);
  const database = new BetterSqlite3(file);
  // WAL lets readers in other processes run beside the single writer; NORMAL sync is durable across process
  // crashes (SIGKILL) and only risks the last commits on power loss.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 10000');
  database.pragma('foreign_keys = ON');
  // RETURNING collects its rows in a temporary table; in memory instead of a temp file, marking a claim's
  // jobs running costs about 15% less. pixq's sorts and groupings are small.
  database.pragma('temp_store = MEMORY');
  const checkpointer = Checkpointer.start(database, file);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });
  const close = async () => {
    await checkpointer.stop();
    await db.destroy();
  };
  return { db, dialect: 'sqlite', location: file, close, exclusively: (fn) => withFileLock(`${file}.lock`, fn) };
}

const LOCK_RETRY_MS = 50;

/**
 * Runs `fn` while holding an exclusive transaction on a small database of its own: the operating system
 * releases it if the process dies, so a crash leaves no stale lock. Waiting is a retry loop, not SQLite's busy
 * timeout, which would block the event loop (and so whoever holds the lock in this same process).
 */
async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = new BetterSqlite3(file);
  try {
    lock.pragma('busy_timeout = 0');
    for (;;) {
      try {
        lock.exec('begin exclusive');
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
        await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
      }
    }
    return await fn();
  } finally {
    lock.close();
  }
}

/**
 * The database file is made (or, made by an older pixq, narrowed to) owner-only before SQLite opens it; SQLite
 * gives the WAL and its index the database file's mode when it creates them.
 */
function restrictToOwner(file: string) {
  fs.closeSync(fs.openSync(file, 'a', OWNER_ONLY));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      fs.chmodSync(f, OWNER_ONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely prepares every query anew; preparing costs about as much as running a small statement. pixq's
 * queries come from a few builders, so their SQL texts repeat and a bounded cache of prepared statements
 * serves nearly all of them.
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (!statement) {
        statement = withFastRows(database.prepare(sql));
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}

/**
 * better-sqlite3 builds each result row as an object one property at a time, which costs more than running
 * a small statement (about 15 µs for a 32-column job row here). Reading rows as arrays and turning them into
 * objects with a constructor compiled once per statement gives the same objects at less than half the cost.
 */
function withFastRows(statement: BetterSqlite3.Statement): SqliteStatement {
  if (!statement.reader) return statement;
  statement.raw(true);
  const toRow = rowBuilder(statement.columns().map((c) => c.name));
  return {
    reader: true,
    all: (parameters) => statement.all(parameters as unknown[]).map((values) => toRow(values as unknown[])),
    run: (parameters) => statement.run(parameters as unknown[]),
    *iterate(parameters) {
      for (const values of statement.iterate(parameters as unknown[])) yield toRow(values as unknown[]);
    },
  };
}

/** `(values) => ({ [names[0]]: values[0], ... })` as one object literal, so every row shares one shape. */
function rowBuilder(names: string[]): (values: unknown[]) => Record<string, unknown> {
  // Column names come from pixq's own SQL; JSON.stringify quotes them as property keys all the same.
  const properties = names.map((name, i) => `${JSON.stringify(name)}: values[${i}]`).join(', ');
  return new Function('values', `return { ${properties} };`) as (values: unknown[]) => Record<string, unknown>;
}

async function openPostgres(url: string, poolSize: number, timeoutMs: number): Promise<Store> {
  // Nothing waits forever on a server that stopped answering: connecting (or waiting for a free connection)
  // and each statement give up after `timeoutMs`, and keepalive notices a peer that vanished.
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    keepAlive: true,
  });
  // A connection the server drops (restart, failover) must not crash the process. node-postgres emits
  // `error` on the client whether it is idle (the pool's listener) or checked out (nobody listens: Kysely
  // does not), and an unheard `error` event throws. The query in flight fails on its own; the pool discards
  // the dead connection when it is released.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const location = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  return { db, dialect: 'postgres', pool, location, close: () => db.destroy() };
}
