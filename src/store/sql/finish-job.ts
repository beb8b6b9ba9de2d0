import { sql, type Updateable } from 'kysely';
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

/**
 * Marks several running jobs of `owner` succeeded in one statement, each with its own result JSON; jobs
 * whose lease `owner` lost are left alone. Returns the ids changed: the caller knows the rest of each row.
 * The progress stage and message are cleared, since they describe work still going on.
 */
export async function finishSucceededJobs(
  tx: Tx,
  owner: string,
  jobs: { id: string; result: string | null }[],
  now: number,
): Promise<string[]> {
  if (jobs.length === 0) return [];
  // Hand-written for the same reason as markRunning: it runs for every batch of finished jobs. Returning only
  // the id matters on SQLite, where each returned column of each row has a measurable cost.
  const results = jobs.some((j) => j.result !== null)
    ? sql`case id ${sql.join(
        jobs.map((j) => sql`when ${j.id} then ${j.result}`),
        sql` `,
      )} end`
    : sql`null`;
  const { rows } = await sql<{ id: string }>`
    update jobs set state = 'succeeded', result = ${results}, progress_percent = 100, progress_stage = null,
      progress_message = null, error_code = null, error_message = null, error_retryable = null,
      finished_at = ${now}, updated_at = ${now}, lease_owner = null, lease_expires_at = null
    where id in (${sql.join(jobs.map((j) => j.id))}) and state = 'running' and lease_owner = ${owner}
    returning id`.execute(tx);
  return rows.map((r) => r.id);
}

export async function insertOutputs(tx: Tx, outputs: JobOutputsTable[]) {
  if (outputs.length > 0) await tx.insertInto('job_outputs').values(outputs).execute();
}

/** Records why a succeeded job's output could not be published (the job stays succeeded). */
export async function recordPublishError(tx: Tx, jobId: string, error: { code: string; message: string }) {
  await tx
    .updateTable('jobs')
    .set({ publish_error: JSON.stringify(error) })
    .where('id', '=', jobId)
    .execute();
}
