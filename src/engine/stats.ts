import { countJobsByState, selectRecentTimings } from '../store/sql/job-stats.js';
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
