import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Store } from './connect.js';
import * as initial from './migrations/0001-initial.js';
import * as sparseJobIndexes from './migrations/0002-sparse-job-indexes.js';
import * as blobLedger from './migrations/0003-blob-ledger.js';
import * as webhooks from './migrations/0004-webhooks.js';
import * as jobWebhookUrl from './migrations/0005-job-webhook-url.js';
import * as jobMetadata from './migrations/0006-job-metadata.js';
import * as templates from './migrations/0007-templates.js';
import * as assets from './migrations/0008-assets.js';
import * as deliveriesByVendor from './migrations/0009-deliveries-by-vendor.js';

const MIGRATIONS = {
  '0001-initial': initial,
  '0002-sparse-job-indexes': sparseJobIndexes,
  '0003-blob-ledger': blobLedger,
  '0004-webhooks': webhooks,
  '0005-job-webhook-url': jobWebhookUrl,
  '0006-job-metadata': jobMetadata,
  '0007-templates': templates,
  '0008-assets': assets,
  '0009-deliveries-by-vendor': deliveriesByVendor,
};

export const LATEST_MIGRATION = Object.keys(MIGRATIONS).at(-1)!;

function provider(store: Store): MigrationProvider {
  return {
    async getMigrations() {
      const migrations: Record<string, Migration> = {};
      for (const [name, module] of Object.entries(MIGRATIONS)) {
        migrations[name] = { up: (db) => module.up(db, store.dialect) };
      }
      return migrations;
    },
  };
}

/**
 * Applies pending migrations; safe to call from several processes at once: on SQLite one at a time under the
 * store's lock (the others then find nothing to do), on PostgreSQL under the migrator's own lock.
 */
export async function migrate(store: Store): Promise<string[]> {
  const migrator = new Migrator({ db: store.db, provider: provider(store) });
  const run = async () => {
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error;
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  };
  return store.exclusively ? store.exclusively(run) : run();
}

/** True when every migration pixq knows has been applied (for /readyz). */
export async function isMigrated(store: Store): Promise<boolean> {
  const migrator = new Migrator({ db: store.db, provider: provider(store) });
  const all = await migrator.getMigrations();
  return all.every((m) => m.executedAt !== undefined);
}
