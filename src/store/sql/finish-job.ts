import type { Updateable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { JobRow, JobsTable, JobOutputsTable } from '../schema.js';

/**
 * Moves a running job out of `running`, but only while `owner` still holds its lease. A worker whose lease
 * was lost (it stalled and another worker took the job over) changes nothing: that is the fence that keeps
 * a job from finishing twice. Returns the updated row, or undefined when the lease was lost.
 */
export async function finishRunningJob(
  tx: Tx,
  id: string,
  owner: string,
  changes: Updateable<JobsTable>,
): Promise<JobRow | undefined> {
  return tx
    .updateTable('jobs')
    .set({ ...changes, lease_owner: null, lease_expires_at: null })
    .where('id', '=', id)
    .where('state', '=', 'running')
    .where('lease_owner', '=', owner)
    .returningAll()
    .executeTakeFirst();
}

export async function insertOutputs(tx: Tx, outputs: JobOutputsTable[]) {
  if (outputs.length > 0) await tx.insertInto('job_outputs').values(outputs).execute();
}
