import type { Tx } from '../transaction.js';
import type { UploadRow } from '../schema.js';

export async function insertUpload(tx: Tx, row: UploadRow): Promise<void> {
  await tx.insertInto('uploads').values(row).execute();
}

/** One of the vendor's uploads; another vendor's upload is not found. */
export async function selectUpload(tx: Tx, id: string, vendorId: string): Promise<UploadRow | undefined> {
  return tx.selectFrom('uploads').selectAll().where('id', '=', id).where('vendor_id', '=', vendorId).executeTakeFirst();
}

/**
 * The type and size of a vendor's input as it was uploaded, read from an upload of those bytes (by the
 * `uploads_blob` index) so that serving the input needs no look at the bytes. Undefined once every such upload
 * is past retention while a job still refers to the blob.
 */
export async function selectUploadedType(
  tx: Tx,
  vendorId: string,
  blob: string,
): Promise<Pick<UploadRow, 'content_type' | 'bytes'> | undefined> {
  return tx
    .selectFrom('uploads')
    .select(['content_type', 'bytes'])
    .where('blob', '=', blob)
    .where('vendor_id', '=', vendorId)
    .limit(1)
    .executeTakeFirst();
}
