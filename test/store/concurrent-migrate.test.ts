import { expect, it } from 'vitest';
import { LATEST_MIGRATION, migrate, openStore } from '../../src/store/index.js';
import { tempDir } from '../support/stores.js';

/**
 * Several processes starting at once on a new SQLite file: each migrates, and exactly one applies the
 * migrations (Kysely's migrator takes no lock on SQLite; the store's own lock serializes them). Three stores
 * in one process interleave at every await, as processes would.
 */
it('migrates a new SQLite file once when several stores start on it at the same time', async () => {
  const dataDir = tempDir();
  const stores = await Promise.all([1, 2, 3].map(() => openStore({ dataDir })));
  try {
    const applied = await Promise.all(stores.map((store) => migrate(store)));
    const ran = applied.filter((names) => names.length > 0);
    expect(ran).toHaveLength(1);
    expect(ran[0].at(-1)).toBe(LATEST_MIGRATION);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});
