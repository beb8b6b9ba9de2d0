import { sql } from 'kysely';
import type { Tx } from '../transaction.js';
import { FINISHED_STATES } from '../schema.js';

/** Job counts by vendor, type and state; `vendorId` narrows to one vendor. */
export async function countJobsByState(tx: Tx, vendorId?: string) {
  let query = tx
    .selectFrom('jobs')
    .select(['vendor_id', 'type', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy(['vendor_id', 'type', 'state']);
  if (vendorId !== undefined) query = query.where('vendor_id', '=', vendorId);
  const rows = await query.execute();
  return rows.map((r) => ({ vendorId: r.vendor_id, type: r.type, state: r.state, count: Number(r.n) }));
}

/**
 * Compares the vendor without its index: a recent window is a short range of jobs_finished, and an equality on
 * vendor_id would lead SQLite (no statistics) to read every job the vendor ever had instead.
 */
const ofVendor = (vendorId: string) => sql<boolean>`vendor_id || '' = ${vendorId}`;

/** Timings of jobs finished since `since` (at most `limit`, newest first), for percentiles and throughput. */
export async function selectRecentTimings(tx: Tx, since: number, limit: number, vendorId?: string) {
  let query = tx
    .selectFrom('jobs')
    .select(['type', 'state', 'created_at', 'started_at', 'finished_at'])
    .where('finished_at', '>=', since)
    .where('state', 'in', FINISHED_STATES)
    .orderBy('finished_at', 'desc')
    .limit(limit);
  if (vendorId !== undefined) query = query.where(ofVendor(vendorId));
  return query.execute();
}

/**
 * Jobs finished since `since` (a minute boundary), counted per minute of `finished_at` (minutes since the
 * epoch), with how many of them failed: exact counts for the series, whatever the timing sample holds.
 */
export async function countFinishedByMinute(tx: Tx, since: number, vendorId?: string) {
  const vendor = vendorId === undefined ? sql`` : sql`and ${ofVendor(vendorId)}`;
  const { rows } = await sql<{ minute: number | string; finished: number | string; failed: number | string }>`
    select finished_at / 60000 as minute, count(*) as finished, sum(case when state = 'failed' then 1 else 0 end) as failed
    from jobs
    where finished_at >= ${since} and state in (${sql.join(FINISHED_STATES)}) ${vendor}
    group by finished_at / 60000`.execute(tx);
  return rows.map((r) => ({ minute: Number(r.minute), finished: Number(r.finished), failed: Number(r.failed) }));
}
