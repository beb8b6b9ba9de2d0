import type { Tx } from '../transaction.js';
import type { ApiKeyRow } from '../schema.js';

export async function insertApiKey(tx: Tx, row: ApiKeyRow): Promise<void> {
  await tx.insertInto('api_keys').values(row).execute();
}

/** Marks one of the vendor's keys revoked; undefined when the vendor has no such key. */
export async function revokeApiKey(
  tx: Tx,
  vendorId: string,
  keyId: string,
  now: number,
): Promise<ApiKeyRow | undefined> {
  return tx
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('id', '=', keyId)
    .where('vendor_id', '=', vendorId)
    .returningAll()
    .executeTakeFirst();
}

/** The vendor's keys, revoked ones included, oldest first. */
export async function selectApiKeys(tx: Tx, vendorId: string): Promise<ApiKeyRow[]> {
  return tx.selectFrom('api_keys').selectAll().where('vendor_id', '=', vendorId).orderBy('created_at').execute();
}
