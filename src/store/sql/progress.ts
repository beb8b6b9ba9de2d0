import type { Tx } from '../transaction.js';
import type { JobRow } from '../schema.js';

/** Sets a running job's progress while `owner` holds its lease; undefined when it no longer does. */
export async function updateProgress(
  tx: Tx,
  owner: string,
  jobId: string,
  progress: { percent: number; stage: string | null; message: string | null },
  now: number,
): Promise<JobRow | undefined> {
  return tx
    .updateTable('jobs')
    .set({
      progress_percent: progress.percent,
      progress_stage: progress.stage,
      progress_message: progress.message,
      updated_at: now,
    })
    .where('id', '=', jobId)
    .where('state', '=', 'running')
    .where('lease_owner', '=', owner)
    .returningAll()
    .executeTakeFirst();
}
