import {
  countRunning,
  lockJobTypes,
  lockVendors,
  markRunning,
  readGlobalVirtualTime,
  recordTypeClaims,
  selectClaimCandidates,
  selectNextJobs,
  writeClocks,
} from '../store/sql/claim-jobs.js';
import type { JobRow, JobTypeRow, Tx } from '../store/index.js';
import type { EmitEvents, EngineContext } from './context.js';
import { advanceClocks, planFairOrder } from './fair-share.js';

export interface ClaimResult {
  jobs: JobRow[];
  /** True when ready work was held by another claimer: worth asking again shortly rather than waiting. */
  contended: boolean;
}

/**
 * One claim round for a worker with free `slots` per job type, inside the caller's transaction:
 * 1. per type, how many may start (worker slots, pause, global cap, global rate limit);
 * 2. which vendors have ready work, ranked by the fair scheduler and locked;
 * 3. the planned number of each vendor's next jobs, by priority then age, become `running` under a lease;
 * 4. the vendors' virtual clocks move on by what they actually got.
 */
export async function claimJobs(
  ctx: EngineContext,
  tx: Tx,
  emit: EmitEvents,
  owner: string,
  slots: Record<string, number>,
): Promise<ClaimResult> {
  const now = ctx.now();
  const dialect = ctx.store.dialect;
  const typeRows = await lockJobTypes(
    tx,
    dialect,
    Object.keys(slots).filter((t) => slots[t] > 0),
  );
  const room = await roomPerType(tx, slots, typeRows, now);
  const types = Object.keys(room).filter((t) => room[t] > 0);
  if (types.length === 0) return { jobs: [], contended: false };

  const candidates = await selectClaimCandidates(tx, types);
  if (candidates.length === 0) return { jobs: [], contended: false };
  const globalTime = await readGlobalVirtualTime(tx);
  const locked = await lockVendors(tx, dialect, candidates.map((c) => c.id).sort());
  const nextJob = new Map(candidates.map((c) => [c.id, c.next_job_id]));
  const total = Math.min(ctx.options.claimBatch, sum(Object.values(room)));
  const order = planFairOrder(
    locked.map((v) => ({
      vendorId: v.id,
      weight: v.weight,
      virtualTime: v.virtual_time,
      room: (v.max_running ?? Infinity) - v.running,
      nextJobId: nextJob.get(v.id)!,
    })),
    globalTime,
    total,
  );

  const chosen = await takeJobs(tx, dialect, order, types, room);
  const rows = await markRunning(tx, chosen.ids, { owner, now, expiresAt: now + ctx.options.leaseMs });
  const clocks = advanceClocks(
    locked.map((v) => ({
      vendorId: v.id,
      weight: v.weight,
      virtualTime: v.virtual_time,
      claimed: chosen.perVendor.get(v.id) ?? 0,
    })),
    globalTime,
  );
  await writeClocks(tx, clocks.vendorTimes, clocks.globalTime);
  await countRateLimited(tx, typeRows, rows, now);
  emit(rows);
  return { jobs: rows, contended: rows.length === 0 && locked.length < candidates.length };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** How many jobs of each type may start in this claim. */
async function roomPerType(tx: Tx, slots: Record<string, number>, typeRows: JobTypeRow[], now: number) {
  const room: Record<string, number> = {};
  for (const [type, free] of Object.entries(slots)) if (free > 0) room[type] = free;
  const capped = typeRows.filter((t) => t.max_running !== null).map((t) => t.type);
  const running = await countRunning(tx, 'type', capped);
  for (const t of typeRows) {
    if (t.paused) room[t.type] = 0;
    if (t.max_running !== null) room[t.type] = Math.min(room[t.type], t.max_running - (running.get(t.type) ?? 0));
    if (t.rate_limit !== null && t.rate_window_ms !== null) {
      const used = now - t.window_start < t.rate_window_ms ? t.window_count : 0;
      room[t.type] = Math.min(room[t.type], t.rate_limit - used);
    }
  }
  return room;
}

/** Walks the fair order, taking each vendor's next ready job while its type has room. */
async function takeJobs(
  tx: Tx,
  dialect: 'sqlite' | 'postgres',
  order: string[],
  types: string[],
  room: Record<string, number>,
) {
  const wanted = new Map<string, number>();
  for (const vendorId of order) wanted.set(vendorId, (wanted.get(vendorId) ?? 0) + 1);
  const queues = new Map<string, { id: string; type: string }[]>();
  for (const [vendorId, count] of wanted)
    queues.set(vendorId, await selectNextJobs(tx, dialect, vendorId, types, count));

  const left = { ...room };
  const ids: string[] = [];
  const perVendor = new Map<string, number>();
  for (const vendorId of order) {
    const queue = queues.get(vendorId)!;
    const index = queue.findIndex((job) => left[job.type] > 0);
    if (index < 0) continue;
    const [job] = queue.splice(index, 1);
    left[job.type]--;
    ids.push(job.id);
    perVendor.set(vendorId, (perVendor.get(vendorId) ?? 0) + 1);
  }
  return { ids, perVendor };
}

/** Charges this claim's jobs against each rate-limited type's current window. */
async function countRateLimited(tx: Tx, typeRows: JobTypeRow[], claimed: JobRow[], now: number) {
  for (const t of typeRows) {
    if (t.rate_limit === null || t.rate_window_ms === null) continue;
    const count = claimed.filter((j) => j.type === t.type).length;
    if (count === 0) continue;
    const current = now - t.window_start < t.rate_window_ms;
    await recordTypeClaims(tx, t.type, current ? t.window_start : now, (current ? t.window_count : 0) + count);
  }
}
