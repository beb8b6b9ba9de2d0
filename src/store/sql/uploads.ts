import type { Tx } from '../transaction.js';
import type { UploadRow } from '../schema.js';

export async function insertUpload(tx: Tx, row: UploadRow): Promise<void> {
  await tx.insertInto('uploads').values(row).execute();
}

/** One of the vendor's uploads; another vendor's upload is not found. */
export async function selectUpload(tx: Tx, id: string, vendorId: string): Promise<UploadRow | undefined> {
  return tx.selectFrom('uploads').selectAll().where('id', '=', id).where('vendor_id', '=', vendorId).executeTakeFirst();
}
