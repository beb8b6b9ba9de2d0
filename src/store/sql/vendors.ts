import { sql, type Insertable, type Updateable } from 'kysely';
import type { Dialect } from '../connect.js';
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

/** One vendor by id: the check every submission makes, so written as a template rather than built. */
export async function selectVendorById(tx: Tx, id: string): Promise<VendorRow | undefined> {
  const { rows } = await sql<VendorRow>`select * from vendors where id = ${id}`.execute(tx);
  return rows[0];
}

/**
 * One vendor by id, its row locked until the transaction ends (PostgreSQL), so that counting its backlog and
 * inserting jobs is one step per vendor: two API processes enqueueing at once would otherwise both count the
 * same backlog and together pass the quota. SQLite needs no lock: a write transaction has the database to itself.
 */
export async function lockVendorById(tx: Tx, dialect: Dialect, id: string): Promise<VendorRow | undefined> {
  if (dialect === 'sqlite') return selectVendorById(tx, id);
  const { rows } = await sql<VendorRow>`select * from vendors where id = ${id} for update`.execute(tx);
  return rows[0];
}

/** The vendor owning an unrevoked API key with this hash: every authenticated request asks. */
export async function selectVendorByKeyHash(tx: Tx, keyHash: string): Promise<VendorRow | undefined> {
  const { rows } = await sql<VendorRow>`
    select v.* from api_keys k join vendors v on v.id = k.vendor_id
    where k.key_hash = ${keyHash} and k.revoked_at is null`.execute(tx);
  return rows[0];
}
