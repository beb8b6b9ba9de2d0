import type { Insertable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { AssetRow, AssetsTable } from '../schema.js';

/**
 * Assets' statements, built with the query builder: none runs per job. Every write happens after the vendor's
 * row is locked (src/engine/assets.ts), so one vendor's writes to its assets and storage count are serialized.
 */

export async function selectAsset(tx: Tx, vendorId: string, path: string): Promise<AssetRow | undefined> {
  return tx
    .selectFrom('assets')
    .selectAll()
    .where('vendor_id', '=', vendorId)
    .where('path', '=', path)
    .executeTakeFirst();
}

/** Writes the asset at its path: a new row, or the existing one with new bytes. */
export async function upsertAsset(tx: Tx, row: Insertable<AssetsTable>): Promise<AssetRow> {
  const { vendor_id: _vendor, path: _path, created_at: _created, ...changes } = row;
  return tx
    .insertInto('assets')
    .values(row)
    .onConflict((oc) => oc.columns(['vendor_id', 'path']).doUpdateSet(changes))
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function deleteAssetRow(tx: Tx, vendorId: string, path: string): Promise<AssetRow | undefined> {
  return tx
    .deleteFrom('assets')
    .where('vendor_id', '=', vendorId)
    .where('path', '=', path)
    .returningAll()
    .executeTakeFirst();
}

/** A page of a vendor's assets whose path starts with `prefix`, in path order, after the path `after`. */
export async function selectAssetPage(
  tx: Tx,
  query: { vendorId: string; prefix: string; after: string | undefined; limit: number },
): Promise<AssetRow[]> {
  let q = tx.selectFrom('assets').selectAll().where('vendor_id', '=', query.vendorId);
  // A range on the primary key instead of LIKE: no escaping of `_` and `%`, and both planners use the index.
  if (query.prefix !== '') q = q.where('path', '>=', query.prefix).where('path', '<', prefixEnd(query.prefix));
  if (query.after !== undefined) q = q.where('path', '>', query.after);
  return q.orderBy('path').limit(query.limit).execute();
}

/** The smallest string greater than every string starting with `prefix` (paths are ASCII, `/` to `z`). */
function prefixEnd(prefix: string): string {
  return prefix + '\u007f';
}

/** The assets that hold these jobs' outputs now (an asset replaced by another job's output no longer does). */
export async function selectAssetsOfJobs(tx: Tx, jobIds: string[]): Promise<AssetRow[]> {
  if (jobIds.length === 0) return [];
  return tx.selectFrom('assets').selectAll().where('job_id', 'in', jobIds).execute();
}
