import type { Updateable } from 'kysely';
import type { TemplateRow, TemplatesTable } from '../schema.js';
import type { Tx } from '../transaction.js';

/** Stores a template; undefined when the vendor already has one of that name (nothing is written). */
export async function insertTemplate(tx: Tx, row: TemplateRow): Promise<TemplateRow | undefined> {
  return tx
    .insertInto('templates')
    .values(row)
    .onConflict((oc) => oc.columns(['vendor_id', 'name']).doNothing())
    .returningAll()
    .executeTakeFirst();
}

export async function countTemplates(tx: Tx, vendorId: string): Promise<number> {
  const { count } = await tx
    .selectFrom('templates')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .where('vendor_id', '=', vendorId)
    .executeTakeFirstOrThrow();
  return Number(count);
}

/** One of the vendor's templates; another vendor's is not found. */
export async function selectTemplate(tx: Tx, vendorId: string, name: string): Promise<TemplateRow | undefined> {
  return tx
    .selectFrom('templates')
    .selectAll()
    .where('vendor_id', '=', vendorId)
    .where('name', '=', name)
    .executeTakeFirst();
}

export async function selectTemplates(tx: Tx, vendorId: string): Promise<TemplateRow[]> {
  return tx.selectFrom('templates').selectAll().where('vendor_id', '=', vendorId).orderBy('name').execute();
}

export async function updateTemplate(
  tx: Tx,
  vendorId: string,
  name: string,
  changes: Updateable<TemplatesTable>,
): Promise<TemplateRow | undefined> {
  return tx
    .updateTable('templates')
    .set(changes)
    .where('vendor_id', '=', vendorId)
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
}

/** Whether the vendor had a template of that name to delete. */
export async function deleteTemplate(tx: Tx, vendorId: string, name: string): Promise<boolean> {
  const { numDeletedRows } = await tx
    .deleteFrom('templates')
    .where('vendor_id', '=', vendorId)
    .where('name', '=', name)
    .executeTakeFirst();
  return numDeletedRows > 0n;
}
