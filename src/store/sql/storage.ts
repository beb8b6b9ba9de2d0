import { sql } from 'kysely';
import type { Tx } from '../transaction.js';

/**
 * A vendor's storage count (`vendors.storage_bytes`): what its uploads and assets take. Written by hand as
 * one conditional UPDATE, so the check against the quota and the change cannot be split by another writer.
 */

/**
 * Adds `delta` bytes to the vendor's count unless that would pass its quota (`max_storage_bytes`, else
 * `defaultMax`; null for both: no limit). Returns the new count, or undefined when refused. A delta of zero or
 * less always applies: freeing space is never refused.
 */
export async function reserveStorage(
  tx: Tx,
  vendorId: string,
  delta: number,
  defaultMax: number | null,
): Promise<number | undefined> {
  const { rows } = await sql<{ storage_bytes: number }>`
    update vendors set storage_bytes = storage_bytes + ${delta}
    where id = ${vendorId} and (
      ${delta} <= 0
      or coalesce(max_storage_bytes, cast(${defaultMax} as bigint)) is null
      or storage_bytes + ${delta} <= coalesce(max_storage_bytes, cast(${defaultMax} as bigint)))
    returning storage_bytes`.execute(tx);
  return rows[0] === undefined ? undefined : Number(rows[0].storage_bytes);
}

/** Frees what deleted uploads or assets took, per vendor. */
export async function releaseStorage(tx: Tx, freed: { vendorId: string; bytes: number }[]): Promise<void> {
  const byVendor = new Map<string, number>();
  for (const { vendorId, bytes } of freed) byVendor.set(vendorId, (byVendor.get(vendorId) ?? 0) + Number(bytes));
  // In id order: two transactions freeing space of the same vendors lock their rows in the same order.
  for (const [vendorId, bytes] of [...byVendor].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await sql`update vendors set storage_bytes = storage_bytes - ${bytes} where id = ${vendorId}`.execute(tx);
  }
}
