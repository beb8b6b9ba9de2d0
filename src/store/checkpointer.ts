import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';

/** How often the thread copies committed WAL pages into the database file. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * The writer's own checkpoint threshold, in pages (SQLite's default is 1000). Under steady writes the WAL only
 * starts over after a checkpoint that a writer runs, so this bounds the WAL file (40 MB with 4 KB pages);
 * by then the thread has already copied nearly all of it, and the writer's checkpoint is short.
 */
const WRITER_CHECKPOINT_PAGES = 10_000;
const SQLITE_DEFAULT_CHECKPOINT_PAGES = 1000;

// Plain JavaScript run in the thread: it needs only the driver, not pixq's TypeScript.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 0');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy: another process is checkpointing. The next round catches up.
  }
}, workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Checkpoints the SQLite WAL on a thread of its own. SQLite's automatic checkpoint runs inside the commit
 * that crosses its threshold: that commit copies about a thousand pages into the database file and syncs
 * both files, stalling the writer for milliseconds to tens of milliseconds; measured on a busy worker, those
 * stalls were a fifth of its SQL time. Here the copying and syncing happen beside the writers.
 */
export class Checkpointer {
  private stopping = false;
  private readonly exited: Promise<unknown>;

  private constructor(
    private readonly thread: Worker,
    database: BetterSqlite3.Database,
  ) {
    this.exited = new Promise((resolve) => thread.once('exit', resolve));
    // Without the thread the writer checkpoints as SQLite does by default: slower, never wrong.
    void this.exited.then(() => {
      if (!this.stopping && database.open) database.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_CHECKPOINT_PAGES}`);
    });
    thread.on('error', () => undefined); // followed by 'exit'
    thread.unref();
  }

  static start(database: BetterSqlite3.Database, file: string): Checkpointer {
    database.pragma(`wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}`);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const thread = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { driver, file, intervalMs: CHECKPOINT_INTERVAL_MS },
    });
    return new Checkpointer(thread, database);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.thread.ref(); // the wait for its exit must keep the process alive
    this.thread.postMessage('stop');
    await this.exited;
  }
}
