import { Migrator, type Migration } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import * as initial from '../../src/store/migrations/0001-initial.js';
import * as sparseJobIndexes from '../../src/store/migrations/0002-sparse-job-indexes.js';
import * as blobLedger from '../../src/store/migrations/0003-blob-ledger.js';
import * as webhooks from '../../src/store/migrations/0004-webhooks.js';
import { dropDatabase, describeEachStore } from '../support/stores.js';

/** 0006 indexes the metadata of the jobs a store already holds, by the same rule as new submissions. */
describeEachStore('migration 0006-job-metadata', (target) => {
  let store: Store | undefined;
  let databaseUrl: string | undefined;
  afterEach(async () => {
    await store?.close();
    await dropDatabase(databaseUrl);
  });

  it('backfills the index from existing jobs, page by page', async () => {
    const location = await target.fresh();
    databaseUrl = location.databaseUrl;
    store = await openStore(location);
    const before: Record<string, { up(db: never, dialect: never): Promise<void> }> = {
      '0001-initial': initial,
      '0002-sparse-job-indexes': sparseJobIndexes,
      '0003-blob-ledger': blobLedger,
      '0004-webhooks': webhooks,
    };
    const s = store;
    const provider = {
      getMigrations: async () =>
        Object.fromEntries(
          Object.entries(before).map(([name, m]) => [
            name,
            { up: (db) => m.up(db as never, s.dialect as never) } as Migration,
          ]),
        ),
    };
    const { error } = await new Migrator({ db: store.db, provider }).migrateToLatest();
    expect(error).toBeUndefined();
    const now = Date.now();
    await store.db
      .insertInto('vendors')
      .values({ id: 'V1', name: 'v1', weight: 1, status: 'active', virtual_time: 0, created_at: now, updated_at: now })
      .execute();
    const job = (i: number, metadata: string | null) => ({
      id: `J${String(i).padStart(5, '0')}`,
      vendor_id: 'V1',
      type: 'noop',
      state: 'queued' as const,
      priority: 0,
      options: '{}',
      attempts: 0,
      max_attempts: 1,
      backoff_base_ms: 1,
      backoff_max_ms: 1,
      timeout_ms: 1000,
      run_at: now,
      cancel_requested: 0,
      progress_percent: 0,
      metadata,
      created_at: now,
      updated_at: now,
    });
    // More than one backfill page, and jobs without metadata or with values the index leaves out.
    const rows = Array.from({ length: 2500 }, (_, i) =>
      job(i, JSON.stringify({ recordId: `r-${i}`, n: i % 2 === 0, deep: { a: 1 }, long: 'y'.repeat(300) })),
    );
    rows.push(job(9999, null));
    for (let i = 0; i < rows.length; i += 500)
      await store.db
        .insertInto('jobs')
        .values(rows.slice(i, i + 500))
        .execute();

    // The store stops at 0004: 0006 runs among the migrations it was missing.
    expect(await migrate(store)).toContain('0006-job-metadata');
    const entries = await store.db.selectFrom('job_metadata').selectAll().execute();
    expect(entries).toHaveLength(2500 * 2);
    expect(entries.filter((e) => e.job_id === 'J00042').sort((a, b) => a.key.localeCompare(b.key))).toEqual([
      { key: 'n', value: 'true', vendor_id: 'V1', job_id: 'J00042' },
      { key: 'recordId', value: 'r-42', vendor_id: 'V1', job_id: 'J00042' },
    ]);
  });
});
