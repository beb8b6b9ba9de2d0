import type { Insertable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { JobRow, JobsTable } from '../schema.js';

export type NewJobRow = Insertable<JobsTable>;

const CHUNK = 200; // rows per INSERT, well under SQLite's bound-parameter limit

/**
 * Inserts jobs; a job whose (vendor, idempotency key) already exists is not inserted and the existing row
 * is returned in its place. Rows come back in the order given.
 */
export async function insertJobs(tx: Tx, jobs: NewJobRow[]): Promise<{ rows: JobRow[]; created: boolean[] }> {
  const inserted = new Map<string, JobRow>();
  for (let i = 0; i < jobs.length; i += CHUNK) {
    const rows = await tx
      .insertInto('jobs')
      .values(jobs.slice(i, i + CHUNK))
      .onConflict((oc) => oc.columns(['vendor_id', 'idempotency_key']).where('idempotency_key', 'is not', null).doNothing())
      .returningAll()
      .execute();
    for (const row of rows) inserted.set(row.id, row);
  }
  const rows: JobRow[] = [];
  const created: boolean[] = [];
  for (const job of jobs) {
    const row = inserted.get(job.id) ?? (await existingByKey(tx, job));
    rows.push(row);
    created.push(inserted.has(job.id));
  }
  return { rows, created };
}

async function existingByKey(tx: Tx, job: NewJobRow): Promise<JobRow> {
  return tx
    .selectFrom('jobs')
    .selectAll()
    .where('vendor_id', '=', job.vendor_id)
    .where('idempotency_key', '=', job.idempotency_key!)
    .executeTakeFirstOrThrow();
}

/** Jobs a vendor has waiting (queued or delayed): what its backlog quota counts. */
export async function countBacklog(tx: Tx, vendorId: string): Promise<number> {
  const row = await tx
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('vendor_id', '=', vendorId)
    .where('state', 'in', ['queued', 'delayed'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
