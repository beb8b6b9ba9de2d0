import { sql, type RawBuilder } from 'kysely';
import type { Tx } from '../transaction.js';
import type { JobOutputRow, JobRow, JobState } from '../schema.js';

export interface JobFilterQuery {
  /** One vendor's jobs; every vendor's when absent (the admin's view). */
  vendorId?: string;
  states?: readonly JobState[];
  type?: string;
  batchId?: string;
  createdAfter?: number;
  createdBefore?: number;
  /** Top-level metadata values the job has, all of them (see job-metadata.ts for which are indexed). */
  metadata?: readonly { key: string; value: string }[];
  /** Leave out running jobs already asked to cancel (a bulk cancel would otherwise find them again). */
  notCancelRequested?: boolean;
}

export interface JobPageQuery extends JobFilterQuery {
  /** Only jobs with a smaller id: the cursor of the page before. */
  beforeId?: string;
  limit: number;
}

/**
 * The FROM and WHERE of a filtered job query, and the id column to page by. With a metadata filter the query
 * starts from the metadata index (key, value, vendor, job id): its entries for the first pair are already in
 * newest-first job order, so a page reads only as many entries as it needs (also when a value is common), and
 * each further pair is one primary-key probe per job. Without one it reads jobs by (vendor, id) or by id.
 * CROSS JOIN keeps SQLite to that order: with bound parameters and no statistics it would otherwise read all
 * of the vendor's jobs by jobs_by_vendor and sort them (PostgreSQL plans a cross join with a WHERE as a join).
 */
function filtered(q: JobFilterQuery & { beforeId?: string }, needsJobs = true) {
  const [first, ...more] = q.metadata ?? [];
  const id = first ? sql.ref('m.job_id') : sql.ref('jobs.id');
  const where: RawBuilder<unknown>[] = [];
  if (first) {
    where.push(sql`m.key = ${first.key} and m.value = ${first.value}`);
    if (q.vendorId !== undefined) where.push(sql`m.vendor_id = ${q.vendorId}`);
    for (const pair of more) {
      where.push(
        sql`exists (select 1 from job_metadata m2 where m2.key = ${pair.key} and m2.value = ${pair.value} and m2.vendor_id = m.vendor_id and m2.job_id = m.job_id)`,
      );
    }
  }
  const byIndexAlone = where.length;
  if (q.vendorId !== undefined && !first) where.push(sql`jobs.vendor_id = ${q.vendorId}`);
  if (q.states) where.push(q.states.length === 0 ? sql`1 = 0` : sql`jobs.state in (${sql.join(q.states)})`);
  if (q.notCancelRequested) where.push(sql`jobs.cancel_requested = 0`);
  if (q.type !== undefined) where.push(sql`jobs.type = ${q.type}`);
  if (q.batchId !== undefined) where.push(sql`jobs.batch_id = ${q.batchId}`);
  if (q.createdAfter !== undefined) where.push(sql`jobs.created_at > ${q.createdAfter}`);
  if (q.createdBefore !== undefined) where.push(sql`jobs.created_at < ${q.createdBefore}`);
  if (q.beforeId !== undefined) where.push(sql`${id} < ${q.beforeId}`);
  // A count that only the index's columns decide reads the index alone (an index-only scan on both stores).
  const joined = first !== undefined && (needsJobs || where.length > byIndexAlone);
  if (joined) where.push(sql`jobs.id = m.job_id`);
  const from = !first ? sql`jobs` : joined ? sql`job_metadata m cross join jobs` : sql`job_metadata m`;
  return { from, where: where.length > 0 ? sql`where ${sql.join(where, sql` and `)}` : sql``, id };
}

/** Jobs matching the filter, newest first. */
export async function selectJobPage(tx: Tx, q: JobPageQuery): Promise<JobRow[]> {
  const { from, where, id } = filtered(q);
  const { rows } = await sql<JobRow>`select jobs.* from ${from} ${where} order by ${id} desc limit ${q.limit}`.execute(
    tx,
  );
  return rows;
}

/** How many jobs match the filter. */
export async function countJobs(tx: Tx, q: JobFilterQuery): Promise<number> {
  const { from, where } = filtered(q, false);
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${from} ${where}`.execute(tx);
  return Number(rows[0].n);
}

/** What a bulk action needs of the jobs matching the filter: newest first, `limit` at a time. */
export async function selectJobTargets(tx: Tx, q: JobPageQuery) {
  const { from, where, id } = filtered(q);
  const columns = sql`jobs.id, jobs.vendor_id, jobs.type, jobs.options`;
  const { rows } = await sql<
    Pick<JobRow, 'id' | 'vendor_id' | 'type' | 'options'>
  >`select ${columns} from ${from} ${where} order by ${id} desc limit ${q.limit}`.execute(tx);
  return rows;
}

/** The vendor's job submitted with this idempotency key, if any. */
export async function selectJobByIdempotencyKey(tx: Tx, vendorId: string, key: string): Promise<JobRow | undefined> {
  return tx
    .selectFrom('jobs')
    .selectAll()
    .where('vendor_id', '=', vendorId)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

/** A job's outputs in the order the processor produced them. */
export async function selectJobOutputs(tx: Tx, jobId: string): Promise<JobOutputRow[]> {
  return tx.selectFrom('job_outputs').selectAll().where('job_id', '=', jobId).orderBy('idx').execute();
}

/** The outputs of several jobs (a page of a list), in one query. */
export async function selectOutputsOfJobs(tx: Tx, jobIds: string[]): Promise<JobOutputRow[]> {
  if (jobIds.length === 0) return [];
  return tx
    .selectFrom('job_outputs')
    .selectAll()
    .where('job_id', 'in', jobIds)
    .orderBy('job_id')
    .orderBy('idx')
    .execute();
}

/** State and progress of every job in one of the vendor's batches (in a batch of any vendor's, for the admin). */
export async function selectBatchProgress(tx: Tx, vendorId: string | undefined, batchId: string) {
  let query = tx.selectFrom('jobs').select(['state', 'progress_percent']).where('batch_id', '=', batchId);
  if (vendorId !== undefined) query = query.where('vendor_id', '=', vendorId);
  return query.execute();
}
