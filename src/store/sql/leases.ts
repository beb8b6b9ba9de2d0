import type { Tx } from '../transaction.js';
import type { Updateable } from 'kysely';
import type { JobRow, JobsTable } from '../schema.js';
import { RUNNING } from './states.js';

/** Extends the lease of every job `owner` runs; returns the ids whose cancellation was requested. */
export async function renewLeases(tx: Tx, owner: string, ids: string[], now: number, leaseMs: number) {
  if (ids.length === 0) return { renewed: [] as string[], cancelRequested: [] as string[] };
  const rows = await tx
    .updateTable('jobs')
    .set({ lease_expires_at: now + leaseMs, updated_at: now })
    .where('lease_owner', '=', owner)
    .where('state', '=', 'running')
    .where('id', 'in', ids)
    .returning(['id', 'cancel_requested'])
    .execute();
  return {
    renewed: rows.map((r) => r.id),
    cancelRequested: rows.filter((r) => r.cancel_requested === 1).map((r) => r.id),
  };
}

/** Running jobs whose lease ran out: their worker died or stalled. */
export async function selectExpiredLeases(tx: Tx, now: number, limit: number): Promise<JobRow[]> {
  return tx
    .selectFrom('jobs')
    .selectAll()
    .where('state', '=', RUNNING)
    .where('lease_expires_at', '<', now)
    .limit(limit)
    .execute();
}

/** Of `ids` that `owner` runs, those whose cancellation was requested. */
export async function selectCancelRequested(tx: Tx, owner: string, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await tx
    .selectFrom('jobs')
    .select('id')
    .where('lease_owner', '=', owner)
    .where('state', '=', 'running')
    .where('cancel_requested', '=', 1)
    .where('id', 'in', ids)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Ends a lease that ran out, with `changes` (the job's next state), but only if it is still the same expired
 * lease: a heartbeat that renewed it, or another reaper that got there first, leaves the job alone.
 */
export async function endExpiredLease(
  tx: Tx,
  job: JobRow,
  changes: Updateable<JobsTable>,
  now: number,
): Promise<JobRow | undefined> {
  return tx
    .updateTable('jobs')
    .set({ ...changes, lease_owner: null, lease_expires_at: null, updated_at: now })
    .where('id', '=', job.id)
    .where('state', '=', 'running')
    .where('lease_owner', '=', job.lease_owner)
    .where('lease_expires_at', '<', now)
    .returningAll()
    .executeTakeFirst();
}
