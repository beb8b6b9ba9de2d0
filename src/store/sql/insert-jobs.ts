import { CompiledQuery, type Insertable } from 'kysely';
import type { Dialect } from '../connect.js';
import { insertJobMetadata } from './job-metadata.js';
import { valueRows } from './placeholders.js';
import { selectJobByIdempotencyKey } from './read-jobs.js';
import type { Tx } from '../transaction.js';
import type { JobRow, JobsTable } from '../schema.js';

export type NewJobRow = Insertable<JobsTable>;

const CHUNK = 200; // rows per INSERT, well under both databases' bound-parameter limits

/** The columns an enqueue sets; the others start at their defaults. */
const COLUMNS = [
  'id',
  'vendor_id',
  'type',
  'state',
  'priority',
  'options',
  'input_blob',
  'input_url',
  'attempts',
  'max_attempts',
  'backoff_base_ms',
  'backoff_max_ms',
  'timeout_ms',
  'run_at',
  'cancel_requested',
  'progress_percent',
  'idempotency_key',
  'batch_id',
  'metadata',
  'webhook_url',
  'template',
  'publish_path',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof NewJobRow)[];
const INSERT = `insert into jobs (${COLUMNS.join(', ')}) values`;
const ON_CONFLICT = 'on conflict (vendor_id, idempotency_key) where idempotency_key is not null do nothing returning *';

/**
 * Inserts jobs; a job whose (vendor, idempotency key) already exists is not inserted and the existing row
 * is returned in its place; a new job's metadata is indexed with it. Rows come back in the order given. Every submission runs this, so the
 * statement is written by hand: building a 24-column insert with the query builder cost more than running it.
 */
export async function insertJobs(
  tx: Tx,
  dialect: Dialect,
  jobs: NewJobRow[],
): Promise<{ rows: JobRow[]; created: boolean[] }> {
  const inserted = new Map<string, JobRow>();
  for (let i = 0; i < jobs.length; i += CHUNK) {
    const chunk = jobs.slice(i, i + CHUNK);
    const text = `${INSERT} ${valueRows(dialect, chunk.length, COLUMNS.length)} ${ON_CONFLICT}`;
    const parameters = chunk.flatMap((job) => COLUMNS.map((column) => job[column] ?? null));
    const { rows } = await tx.executeQuery<JobRow>(CompiledQuery.raw(text, parameters));
    for (const row of rows) inserted.set(row.id, row);
  }
  await insertJobMetadata(tx, dialect, [...inserted.values()]);
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
  const row = await selectJobByIdempotencyKey(tx, job.vendor_id, job.idempotency_key!);
  if (!row) throw new Error(`job with idempotency key ${job.idempotency_key} vanished during insert`);
  return row;
}

/** Which of `keys` the vendor has already used on a job: those submissions return that job, adding none. */
export async function selectUsedIdempotencyKeys(tx: Tx, vendorId: string, keys: string[]): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const rows = await tx
    .selectFrom('jobs')
    .select('idempotency_key')
    .where('vendor_id', '=', vendorId)
    .where('idempotency_key', 'in', keys)
    .execute();
  return new Set(rows.map((r) => r.idempotency_key!));
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
