import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { Checkpointer } from '../../src/store/checkpointer.js';
import { openStore } from '../../src/store/index.js';
import { waitUntil } from '../support/processes.js';
import { tempDir } from '../support/stores.js';

const fileSize = (file: string) => fs.statSync(file).size;

it('copies committed WAL pages into the database file off the writer, and stops with the store', async () => {
  const store = await openStore({ dataDir: tempDir() });
  try {
    const { rows } = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(store.db);
    expect(rows[0].wal_autocheckpoint).toBe(10_000); // the writer's own checkpoint waits for 10,000 pages

    await sql`create table filler (data blob)`.execute(store.db);
    // About 2,000 pages: past SQLite's default threshold, well below the writer's own, so only the thread
    // can have copied them into the database file.
    for (let i = 0; i < 100; i++) await sql`insert into filler values (zeroblob(80000))`.execute(store.db);
    expect(fileSize(`${store.location}-wal`)).toBeGreaterThan(7_000_000);

    await waitUntil(() => fileSize(store.location) > 7_000_000, 30_000, 'the thread to checkpoint the WAL');
    expect(fileSize(store.location)).toBeGreaterThan(7_000_000);
  } finally {
    await store.close();
  }
});

it('leaves checkpoints to the writer, as SQLite does by default, when the thread fails', async () => {
  const database = new BetterSqlite3(path.join(tempDir(), 'x.db'));
  database.pragma('journal_mode = WAL');
  // The thread cannot open a file in a directory that does not exist, so it fails at once.
  const checkpointer = Checkpointer.start(database, path.join(tempDir(), 'missing', 'x.db'));
  const threshold = () => database.pragma('wal_autocheckpoint', { simple: true });
  expect(threshold()).toBe(10_000);
  await waitUntil(() => threshold() === 1000, 30_000, 'the writer to take checkpoints back');
  expect(threshold()).toBe(1000);
  await checkpointer.stop();
  database.close();
});

it('keeps the process alive while the store closes, so work after close() runs', () => {
  // An unreferenced thread would let Node exit in the middle of close(), silently skipping what follows.
  const script = `
    import { openStore } from './src/store/index.ts';
    const store = await openStore({ dataDir: ${JSON.stringify(tempDir())} });
    await store.close();
    console.log('closed');`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(child.stderr).toBe('');
  expect(child.stdout.trim()).toBe('closed');
});
