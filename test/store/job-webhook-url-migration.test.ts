import { Migrator, type Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import * as initial from '../../src/store/migrations/0001-initial.js';
import * as sparseJobIndexes from '../../src/store/migrations/0002-sparse-job-indexes.js';
import * as blobLedger from '../../src/store/migrations/0003-blob-ledger.js';
import * as webhooks from '../../src/store/migrations/0004-webhooks.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';

/** 0005 changes webhook_deliveries in place (PostgreSQL) or by a rebuild (SQLite): the rows before it stay. */
describeEachStore('migration 0005-job-webhook-url on a store with deliveries', (target) => {
  let store: Store;
  let databaseUrl: string | undefined;

  beforeAll(async () => {
    const location = await target.fresh();
    databaseUrl = location.databaseUrl;
    store = await openStore(location);
    const before = {
      '0001-initial': initial,
      '0002-sparse-job-indexes': sparseJobIndexes,
      '0003-blob-ledger': blobLedger,
      '0004-webhooks': webhooks,
    };
    const migrator = new Migrator({
      db: store.db,
      provider: {
        getMigrations: async () =>
          Object.fromEntries(
            Object.entries(before).map(([name, m]) => [name, { up: (db: Kysely<unknown>) => m.up(db, store.dialect) }]),
          ),
      },
    });
    const { error } = await migrator.migrateToLatest();
    expect(error).toBeUndefined();
    const now = Date.now();
    await store.db
      .insertInto('vendors')
      .values({ id: 'v1', name: 'v1', weight: 1, status: 'active', virtual_time: 0, created_at: now, updated_at: now })
      .execute();
    await store.db
      .insertInto('webhook_endpoints')
      .values({
        id: 'e1',
        vendor_id: 'v1',
        url: 'https://example.com/hook',
        events: '["job.succeeded"]',
        secret: 'whsec_x',
        status: 'enabled',
        created_at: now,
        updated_at: now,
      })
      .execute();
    const delivery = {
      vendor_id: 'v1',
      event_type: 'job.succeeded' as const,
      job_id: 'j1',
      state: 'pending' as const,
      attempts: 2,
      next_attempt_at: now,
      last_status: 503,
      created_at: now,
    };
    await store.db
      .insertInto('webhook_deliveries')
      .values({ id: 'e1.7', endpoint_id: 'e1', ...delivery } as never)
      .execute();
    // The later migrations follow it; 0005 is the first one this store was missing.
    expect((await migrate(store))[0]).toBe('0005-job-webhook-url');
  });
  afterAll(async () => {
    await store?.close();
    await dropDatabase(databaseUrl);
  });

  it('keeps the endpoint deliveries, now with a url column that is null', async () => {
    const rows = await store.db.selectFrom('webhook_deliveries').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: 'e1.7',
      endpoint_id: 'e1',
      url: null,
      attempts: 2,
      last_status: 503,
      state: 'pending',
    });
  });

  it('takes a delivery with a url and no endpoint, and refuses one with neither or both', async () => {
    const now = Date.now();
    const base = {
      vendor_id: 'v1',
      event_type: 'job.succeeded' as const,
      job_id: 'j2',
      state: 'pending' as const,
      attempts: 0,
      next_attempt_at: now,
      created_at: now,
    };
    await store.db
      .insertInto('webhook_deliveries')
      .values({ ...base, id: 'callback.8', endpoint_id: null, url: 'https://example.com/cb' })
      .execute();
    await expect(
      store.db
        .insertInto('webhook_deliveries')
        .values({ ...base, id: 'x.9', endpoint_id: null, url: null })
        .execute(),
    ).rejects.toThrow(/check/i);
    await expect(
      store.db
        .insertInto('webhook_deliveries')
        .values({ ...base, id: 'e1.9', endpoint_id: 'e1', url: 'https://example.com/cb' })
        .execute(),
    ).rejects.toThrow(/check/i);
    // Deleting an endpoint still takes its deliveries with it (the foreign key survived the rebuild).
    await store.db.deleteFrom('webhook_endpoints').where('id', '=', 'e1').execute();
    expect((await store.db.selectFrom('webhook_deliveries').select('id').execute()).map((r) => r.id)).toEqual([
      'callback.8',
    ]);
  });
});
