import type { Tx } from '../transaction.js';
import { FINISHED_STATES } from '../schema.js';
import { blobInUse } from './blobs.js';
import { deleteJobMetadata } from './job-metadata.js';

/**
 * Deletes up to `limit` jobs that finished before `before`, with their outputs and metadata index entries, and returns the
 * blob keys no remaining job or upload refers to any more (for the blob ledger).
 */
export async function deleteFinishedJobs(tx: Tx, before: number, limit: number) {
  const jobs = await tx
    .selectFrom('jobs')
    .select(['id', 'input_blob'])
    .where('finished_at', '<', before)
    .where('state', 'in', FINISHED_STATES)
    .limit(limit)
    .execute();
  if (jobs.length === 0) return { deleted: 0, orphanBlobs: [] as string[], freed: [] };
  const ids = jobs.map((j) => j.id);
  const outputs = await tx.selectFrom('job_outputs').select('blob').where('job_id', 'in', ids).execute();
  const candidates = new Set([...jobs.map((j) => j.input_blob), ...outputs.map((o) => o.blob)].filter(isString));
  await tx.deleteFrom('job_outputs').where('job_id', 'in', ids).execute();
  await deleteJobMetadata(tx, ids);
  await tx.deleteFrom('jobs').where('id', 'in', ids).execute();
  const orphanBlobs: string[] = [];
  for (const blob of candidates) {
    if (!(await blobInUse(tx, blob))) orphanBlobs.push(blob);
  }
  return { deleted: ids.length, orphanBlobs, freed: [] };
}

/**
 * Deletes up to `limit` uploads made before `before` and returns the blob keys nothing refers to any more, and
 * the bytes each vendor's storage count no longer holds.
 * A job that used an upload keeps its own reference to the blob, so deleting the upload never breaks it.
 */
export async function deleteOldUploads(tx: Tx, before: number, limit: number) {
  const uploads = await tx
    .selectFrom('uploads')
    .select(['id', 'blob', 'vendor_id', 'bytes'])
    .where('created_at', '<', before)
    .limit(limit)
    .execute();
  return deleteUploadRows(tx, uploads);
}

/** Deletes the given uploads of one vendor and returns the blob keys nothing refers to any more. */
export async function deleteVendorUploads(tx: Tx, vendorId: string, ids: string[]) {
  if (ids.length === 0) return { deleted: 0, orphanBlobs: [] as string[], freed: [] };
  const uploads = await tx
    .selectFrom('uploads')
    .select(['id', 'blob', 'vendor_id', 'bytes'])
    .where('vendor_id', '=', vendorId)
    .where('id', 'in', ids)
    .execute();
  return deleteUploadRows(tx, uploads);
}

async function deleteUploadRows(tx: Tx, uploads: { id: string; blob: string; vendor_id: string; bytes: number }[]) {
  if (uploads.length === 0) return { deleted: 0, orphanBlobs: [] as string[], freed: [] };
  await tx
    .deleteFrom('uploads')
    .where(
      'id',
      'in',
      uploads.map((u) => u.id),
    )
    .execute();
  const orphanBlobs: string[] = [];
  for (const blob of new Set(uploads.map((u) => u.blob))) {
    if (!(await blobInUse(tx, blob))) orphanBlobs.push(blob);
  }
  const freed = uploads.map((u) => ({ vendorId: u.vendor_id, bytes: Number(u.bytes) }));
  return { deleted: uploads.length, orphanBlobs, freed };
}

function isString(value: string | null): value is string {
  return value !== null;
}
