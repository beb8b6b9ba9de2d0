import type { Insertable, Updateable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { VendorRow, VendorsTable } from '../schema.js';

export async function insertVendor(tx: Tx, vendor: Insertable<VendorsTable>): Promise<VendorRow> {
  return tx.insertInto('vendors').values(vendor).returningAll().executeTakeFirstOrThrow();
}

export async function updateVendor(tx: Tx, id: string, changes: Updateable<VendorsTable>) {
  return tx.updateTable('vendors').set(changes).where('id', '=', id).returningAll().executeTakeFirst();
}

export async function selectVendor(tx: Tx, idOrName: string): Promise<VendorRow | undefined> {
  return tx
    .selectFrom('vendors')
    .selectAll()
    .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
    .executeTakeFirst();
}

export async function selectVendors(tx: Tx): Promise<VendorRow[]> {
  return tx.selectFrom('vendors').selectAll().orderBy('created_at').execute();
}
