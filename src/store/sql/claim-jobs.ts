import { sql } from 'kysely';
import type { Dialect } from '../connect.js';
import type { Tx } from '../transaction.js';
import type { JobRow, JobTypeRow, VendorRow } from '../schema.js';
import { RUNNING } from './states.js';

/**
 * Active vendors with a ready job of one of `types`, with what the fair scheduler needs to rank them.
 * The statements that run on every claim are written as SQL templates: building them with the query
 * builder cost more than running them.
 */
export async function selectClaimCandidates(tx: Tx, types: string[]) {
  const { rows } = await sql<
    Pick<VendorRow, 'id' | 'weight' | 'virtual_time' | 'max_running'> & { next_job_id: string | null }
  >`
    select v.id, v.weight, v.virtual_time, v.max_running,
      (select j.id from jobs j
        where j.vendor_id = v.id and j.state = 'queued' and j.type in (${sql.join(types)})
        order by j.priority desc, j.id limit 1) as next_job_id
    from vendors v
    where v.status = 'active'`.execute(tx);
  return rows.filter((r): r is typeof r & { next_job_id: string } => r.next_job_id !== null);
}

/**
 * Locks the given vendors for this claim and returns their current clocks and running counts.
 * On PostgreSQL a vendor another claimer holds is skipped, so concurrent claimers spread over vendors and
 * the running count read under the lock is exact, which is what makes the per-vendor cap hold.
 */
export async function lockVendors(tx: Tx, dialect: Dialect, vendorIds: string[]) {
  if (vendorIds.length === 0) return [];
  const { rows: vendors } = await sql<Pick<VendorRow, 'id' | 'weight' | 'virtual_time' | 'max_running'>>`
    select id, weight, virtual_time, max_running from vendors
    where id in (${sql.join(vendorIds)}) and status = 'active' ${skipLocked(dialect)}`.execute(tx);
  const capped = vendors.filter((v) => v.max_running !== null).map((v) => v.id);
  const running = await countRunning(tx, 'vendor_id', capped); // only a capped vendor's count matters
  return vendors.map((v) => ({ ...v, running: running.get(v.id) ?? 0 }));
}

/** Running jobs grouped by vendor or by type. */
export async function countRunning(tx: Tx, by: 'vendor_id' | 'type', keys: string[]): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const rows = await tx
    .selectFrom('jobs')
    .select([by, (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', '=', RUNNING)
    .where(by, 'in', keys)
    .groupBy(by)
    .execute();
  return new Map(rows.map((r) => [r[by] as string, Number(r.n)]));
}

/** The job-type rows (pause flag, global caps, rate window) for `types`, locked on PostgreSQL. */
export async function lockJobTypes(tx: Tx, dialect: Dialect, types: string[]): Promise<JobTypeRow[]> {
  if (types.length === 0) return [];
  const lock = dialect === 'postgres' ? sql`for update` : sql``;
  const { rows } = await sql<JobTypeRow>`select * from job_types where type in (${sql.join(types)}) ${lock}`.execute(
    tx,
  );
  return rows;
}

export async function recordTypeClaims(tx: Tx, type: string, windowStart: number, windowCount: number) {
  await tx
    .updateTable('job_types')
    .set({ window_start: windowStart, window_count: windowCount })
    .where('type', '=', type)
    .execute();
}

/** A vendor's next ready jobs of the given types, by priority then age, locked against other claimers. */
export async function selectNextJobs(tx: Tx, dialect: Dialect, vendorId: string, types: string[], limit: number) {
  const { rows } = await sql<Pick<JobRow, 'id' | 'type'>>`
    select id, type from jobs
    where vendor_id = ${vendorId} and state = 'queued' and type in (${sql.join(types)})
    order by priority desc, id limit ${limit} ${skipLocked(dialect)}`.execute(tx);
  return rows;
}

/** Rows another claimer has locked are passed over on PostgreSQL; SQLite's write lock already excludes it. */
function skipLocked(dialect: Dialect) {
  return dialect === 'postgres' ? sql`for update skip locked` : sql``;
}

export async function markRunning(
  tx: Tx,
  ids: string[],
  lease: { owner: string; now: number; expiresAt: number },
): Promise<JobRow[]> {
  if (ids.length === 0) return [];
  // Hand-written: this runs for every claim, and building it with the query builder costs more than running it.
  // No state condition: the ids were just read as queued in this transaction, under SQLite's write lock or
  // PostgreSQL's row locks. (With one, SQLite without statistics scans the state index instead of the keys.)
  const { rows } = await sql<JobRow>`
    update jobs set state = 'running', attempts = attempts + 1, lease_owner = ${lease.owner},
      lease_expires_at = ${lease.expiresAt}, started_at = ${lease.now}, updated_at = ${lease.now},
      progress_percent = 0, progress_stage = null, progress_message = null
    where id in (${sql.join(ids)})
    returning *`.execute(tx);
  return rows;
}

export async function readGlobalVirtualTime(tx: Tx): Promise<number> {
  const { rows } = await sql<{ virtual_time: number }>`select virtual_time from scheduler where id = 1`.execute(tx);
  return rows[0].virtual_time;
}

export async function writeClocks(tx: Tx, vendorTimes: Map<string, number>, globalTime: number) {
  for (const [id, virtualTime] of vendorTimes) {
    await sql`update vendors set virtual_time = ${virtualTime} where id = ${id}`.execute(tx);
  }
  await sql`
    update scheduler set virtual_time = case when virtual_time < ${globalTime} then ${globalTime} else virtual_time end
    where id = 1`.execute(tx);
}
