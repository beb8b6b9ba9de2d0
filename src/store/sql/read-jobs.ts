import type { Tx } from '../transaction.js';
import type { JobOutputRow, JobRow, JobState } from '../schema.js';

export interface JobPageQuery {
  vendorId: string;
  state?: JobState;
  type?: string;
  batchId?: string;
  createdAfter?: number;
  createdBefore?: number;
  /** Only jobs with a smaller id: the cursor of the page before. */
  beforeId?: string;
  limit: number;
}

/** A vendor's jobs matching the filter, newest first. */
export async function selectJobPage(tx: Tx, q: JobPageQuery): Promise<JobRow[]> {
  let query = tx.selectFrom('jobs').selectAll().where('vendor_id', '=', q.vendorId);
  if (q.state) query = query.where('state', '=', q.state);
  if (q.type) query = query.where('type', '=', q.type);
  if (q.batchId) query = query.where('batch_id', '=', q.batchId);
  if (q.createdAfter !== undefined) query = query.where('created_at', '>', q.createdAfter);
  if (q.createdBefore !== undefined) query = query.where('created_at', '<', q.createdBefore);
  if (q.beforeId) query = query.where('id', '<', q.beforeId);
  return query.orderBy('id', 'desc').limit(q.limit).execute();
}

/** The vendor's job submitted with this idempotency key, if any. */
export async function selectJobByIdempotencyKey(tx: Tx, vendorId: string, key: string): Promise<JobRow | undefined> {
  return tx.selectFrom('jobs').selectAll().where('vendor_id', '=', vendorId).where('idempotency_key', '=', key).executeTakeFirst();
}

/** A job's outputs in the order the processor produced them. */
export async function selectJobOutputs(tx: Tx, jobId: string): Promise<JobOutputRow[]> {
  return tx.selectFrom('job_outputs').selectAll().where('job_id', '=', jobId).orderBy('idx').execute();
}

/** The outputs of several jobs (a page of a list), in one query. */
export async function selectOutputsOfJobs(tx: Tx, jobIds: string[]): Promise<JobOutputRow[]> {
  if (jobIds.length === 0) return [];
  return tx.selectFrom('job_outputs').selectAll().where('job_id', 'in', jobIds).orderBy('job_id').orderBy('idx').execute();
}

/** State and progress of every job in one of the vendor's batches. */
export async function selectBatchProgress(tx: Tx, vendorId: string, batchId: string) {
  return tx
    .selectFrom('jobs')
    .select(['state', 'progress_percent'])
    .where('vendor_id', '=', vendorId)
    .where('batch_id', '=', batchId)
    .execute();
}
