import { sql, type Insertable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { AssetVariantRow, AssetVariantsTable } from '../schema.js';

/**
 * The delivery cache's statements. A cache hit reads one row by primary key; the rest runs on a miss, or in
 * the batched touch, so the query builder serves.
 */

export async function selectVariant(tx: Tx, key: string): Promise<AssetVariantRow | undefined> {
  return tx.selectFrom('asset_variants').selectAll().where('key', '=', key).executeTakeFirst();
}

/** Records a rendered variant; false when another process recorded the same one first. */
export async function insertVariant(tx: Tx, row: Insertable<AssetVariantsTable>): Promise<boolean> {
  const inserted = await tx
    .insertInto('asset_variants')
    .values(row)
    .onConflict((oc) => oc.column('key').doNothing())
    .returning('key')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** Adds `delta` to the bytes the cache holds and returns the new total. */
export async function addCacheBytes(tx: Tx, delta: number): Promise<number> {
  const { rows } = await sql<{ bytes: number }>`
    update delivery_cache set bytes = bytes + ${delta} where id = 1 returning bytes`.execute(tx);
  return Number(rows[0].bytes);
}

/** The `limit` variants served longest ago: the ones eviction takes first. */
export async function selectLeastRecentlyUsed(tx: Tx, limit: number): Promise<AssetVariantRow[]> {
  return tx.selectFrom('asset_variants').selectAll().orderBy('last_used_at').orderBy('key').limit(limit).execute();
}

export async function deleteVariants(tx: Tx, keys: string[]): Promise<AssetVariantRow[]> {
  if (keys.length === 0) return [];
  return tx.deleteFrom('asset_variants').where('key', 'in', keys).returningAll().execute();
}

/** Marks variants served at `at` (recorded in batches, not per hit). */
export async function touchVariants(tx: Tx, keys: string[], at: number): Promise<void> {
  if (keys.length === 0) return;
  await tx.updateTable('asset_variants').set({ last_used_at: at }).where('key', 'in', keys).execute();
}
