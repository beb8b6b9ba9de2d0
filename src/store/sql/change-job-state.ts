import type { Updateable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { JobRow, JobState, JobsTable } from '../schema.js';

/**
 * A conditional state change for a caller's own job: `vendorId` scopes it (another vendor's job is never
 * touched) and `from` lists the states the change is allowed from. Returns the updated row or undefined.
 */
export async function changeJobState(
  tx: Tx,
  where: { id: string; vendorId?: string; from: readonly JobState[] },
  changes: Updateable<JobsTable>,
): Promise<JobRow | undefined> {
  let query = tx.updateTable('jobs').set(changes).where('id', '=', where.id).where('state', 'in', where.from);
  if (where.vendorId !== undefined) query = query.where('vendor_id', '=', where.vendorId);
  return query.returningAll().executeTakeFirst();
}

export async function selectJob(tx: Tx, id: string, vendorId?: string): Promise<JobRow | undefined> {
  let query = tx.selectFrom('jobs').selectAll().where('id', '=', id);
  if (vendorId !== undefined) query = query.where('vendor_id', '=', vendorId);
  return query.executeTakeFirst();
}
