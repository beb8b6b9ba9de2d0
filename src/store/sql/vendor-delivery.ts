import { sql, type Updateable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { VendorDeliveryRow, VendorDeliveryTable } from '../schema.js';

/** A vendor's delivery settings (signing key, salt, switches, presets). */

export async function selectDeliverySettings(tx: Tx, vendorId: string): Promise<VendorDeliveryRow | undefined> {
  return tx.selectFrom('vendor_delivery').selectAll().where('vendor_id', '=', vendorId).executeTakeFirst();
}

/** The settings of the vendor with this name, for a delivery request that names it in its path. */
export async function selectDeliverySettingsByName(
  tx: Tx,
  name: string,
): Promise<(VendorDeliveryRow & { status: string }) | undefined> {
  return tx
    .selectFrom('vendors')
    .innerJoin('vendor_delivery', 'vendor_delivery.vendor_id', 'vendors.id')
    .selectAll('vendor_delivery')
    .select('vendors.status')
    .where('vendors.name', '=', name)
    .executeTakeFirst();
}

/** Creates a vendor's settings unless it has some (two processes may try at once; one wins). */
export async function insertDeliverySettings(tx: Tx, row: VendorDeliveryRow): Promise<void> {
  await tx
    .insertInto('vendor_delivery')
    .values(row)
    .onConflict((oc) => oc.column('vendor_id').doNothing())
    .execute();
}

export async function updateDeliverySettings(
  tx: Tx,
  vendorId: string,
  changes: Updateable<VendorDeliveryTable>,
): Promise<VendorDeliveryRow | undefined> {
  return tx
    .updateTable('vendor_delivery')
    .set(changes)
    .where('vendor_id', '=', vendorId)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Replaces the key and salt, keeping the old pair as `previous_*` until `until`: one statement that reads the
 * pair it moves aside, so two rotations at once cannot lose the pair that was current.
 */
export async function rotateDeliveryKey(
  tx: Tx,
  vendorId: string,
  pair: { key: string; salt: string },
  until: number,
  now: number,
): Promise<VendorDeliveryRow | undefined> {
  return tx
    .updateTable('vendor_delivery')
    .set({
      key: pair.key,
      salt: pair.salt,
      previous_key: sql.ref<string>('key'),
      previous_salt: sql.ref<string>('salt'),
      previous_until: until,
      updated_at: now,
    })
    .where('vendor_id', '=', vendorId)
    .returningAll()
    .executeTakeFirst();
}
