import { countFinishedByMinute, countJobsByState, selectRecentTimings } from '../store/sql/job-stats.js';
import type { EngineContext } from './context.js';
import type { JobState } from './types.js';

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Stats {
  /** Counts by state, per type and per vendor, and in total. */
  byType: Record<string, Partial<Record<JobState, number>>>;
  byVendor: Record<string, Partial<Record<JobState, number>>>;
  totals: Partial<Record<JobState, number>>;
  window: {
    ms: number;
    finished: number;
    /** Jobs finished per second over the window. */
    throughput: number;
    waitMs: Percentiles;
    runMs: Percentiles;
  };
}

const SAMPLE_LIMIT = 10_000;

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

function add(into: Record<string, Partial<Record<JobState, number>>>, key: string, state: JobState, n: number) {
  const row = (into[key] ??= {});
  row[state] = (row[state] ?? 0) + n;
}

/** Counts by state; wait and run time percentiles and throughput over the last `windowMs`. */
export async function collectStats(ctx: EngineContext, windowMs: number, vendorId?: string): Promise<Stats> {
  const since = ctx.now() - windowMs;
  const [counts, timings] = await Promise.all([
    ctx.read((db) => countJobsByState(db, vendorId)),
    ctx.read((db) => selectRecentTimings(db, since, SAMPLE_LIMIT, vendorId)),
  ]);
  const byType: Stats['byType'] = {};
  const byVendor: Stats['byVendor'] = {};
  const totals: Stats['totals'] = {};
  for (const c of counts) {
    add(byType, c.type, c.state, c.count);
    add(byVendor, c.vendorId, c.state, c.count);
    totals[c.state] = (totals[c.state] ?? 0) + c.count;
  }
  const started = timings.filter((t) => t.started_at !== null);
  return {
    byType,
    byVendor,
    totals,
    window: {
      ms: windowMs,
      finished: timings.length,
      throughput: Math.round((timings.length / (windowMs / 1000)) * 1000) / 1000,
      waitMs: percentiles(started.map((t) => t.started_at! - t.created_at)),
      runMs: percentiles(started.map((t) => t.finished_at! - t.started_at!)),
    },
  };
}

export interface SeriesBucket {
  /** Start of the minute, epoch milliseconds. */
  at: number;
  finished: number;
  failed: number;
  waitMs: Pick<Percentiles, 'p50' | 'p95'>;
  runMs: Pick<Percentiles, 'p50' | 'p95'>;
}

const MINUTE_MS = 60_000;
// The newest finished jobs of the span whose timings make the percentiles: older minutes of a busy day get
// exact counts and null percentiles rather than a read of every job the day finished.
const SERIES_SAMPLE_LIMIT = 50_000;

/** Per-minute counts and wait/run percentiles of the last `minutes` minutes, the current one last. */
export async function collectSeries(ctx: EngineContext, minutes: number, vendorId?: string): Promise<SeriesBucket[]> {
  const firstMinute = Math.floor(ctx.now() / MINUTE_MS) - minutes + 1;
  const since = firstMinute * MINUTE_MS;
  const [counts, timings] = await Promise.all([
    ctx.read((db) => countFinishedByMinute(db, since, vendorId)),
    ctx.read((db) => selectRecentTimings(db, since, SERIES_SAMPLE_LIMIT, vendorId)),
  ]);
  const buckets = Array.from({ length: minutes }, () => ({
    finished: 0,
    failed: 0,
    waits: [] as number[],
    runs: [] as number[],
  }));
  const bucketOf = (minute: number) => buckets[minute - firstMinute];
  for (const c of counts) Object.assign(bucketOf(c.minute) ?? {}, { finished: c.finished, failed: c.failed });
  for (const t of timings) {
    const bucket = bucketOf(Math.floor(t.finished_at! / MINUTE_MS));
    if (!bucket || t.started_at === null) continue;
    bucket.waits.push(t.started_at - t.created_at);
    bucket.runs.push(t.finished_at! - t.started_at);
  }
  return buckets.map((b, i) => {
    const wait = percentiles(b.waits);
    const run = percentiles(b.runs);
    return {
      at: (firstMinute + i) * MINUTE_MS,
      finished: b.finished,
      failed: b.failed,
      waitMs: { p50: wait.p50, p95: wait.p95 },
      runMs: { p50: run.p50, p95: run.p95 },
    };
  });
}
