import { sql } from 'kysely';
import type { Dialect } from '../connect.js';
import type { Tx } from '../transaction.js';

/**
 * The blob ledger's statements. Hand-written where both dialects need the same upsert or where PostgreSQL
 * must lock the rows it hands to the sweep.
 */

/** Records that `key` is about to be stored: the sweep leaves it alone until `sweepAfter`. */
export async function touchBlob(tx: Tx, key: string, sweepAfter: number): Promise<void> {
  await sql`insert into blobs (key, sweep_after) values (${key}, ${sweepAfter})
    on conflict (key) do update set sweep_after = excluded.sweep_after`.execute(tx);
}

/** Asks the sweep to check these blobs (a reference to them was deleted) from `sweepAfter` on. */
export async function markBlobsUnreferenced(tx: Tx, keys: string[], sweepAfter: number): Promise<void> {
  for (const key of keys) await touchBlob(tx, key, sweepAfter);
}

/**
 * Up to `limit` blobs due for a check. On PostgreSQL the rows stay locked until the sweep's transaction ends,
 * so a writer touching one of them waits until the sweep has deleted it (and then stores it again), and
 * other sweeps skip them.
 */
export async function selectDueBlobs(tx: Tx, dialect: Dialect, now: number, limit: number): Promise<string[]> {
  const lock = dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const { rows } = await sql<{ key: string }>`select key from blobs
    where sweep_after <= ${now} order by sweep_after limit ${limit} ${lock}`.execute(tx);
  return rows.map((r) => r.key);
}

/** A due blob that turned out to be referenced: no check until a reference to it goes again. */
export async function keepBlob(tx: Tx, key: string): Promise<void> {
  await tx.updateTable('blobs').set({ sweep_after: null }).where('key', '=', key).execute();
}

export async function deleteBlobRow(tx: Tx, key: string): Promise<void> {
  await tx.deleteFrom('blobs').where('key', '=', key).execute();
}

/** Whether any job, output, upload, asset or delivery variant refers to the blob. */
export async function blobInUse(tx: Tx, blob: string): Promise<boolean> {
  const references = await Promise.all([
    tx.selectFrom('jobs').select('id').where('input_blob', '=', blob).limit(1).executeTakeFirst(),
    tx.selectFrom('job_outputs').select('job_id').where('blob', '=', blob).limit(1).executeTakeFirst(),
    tx.selectFrom('uploads').select('id').where('blob', '=', blob).limit(1).executeTakeFirst(),
    tx.selectFrom('assets').select('path').where('blob', '=', blob).limit(1).executeTakeFirst(),
    tx.selectFrom('asset_variants').select('key').where('blob', '=', blob).limit(1).executeTakeFirst(),
  ]);
  return references.some(Boolean);
}
