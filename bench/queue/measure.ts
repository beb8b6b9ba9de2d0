import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

/** The knobs every system is measured with; identical for all of them. */
export interface Settings {
  /** Jobs for the enqueue and processing phases. */
  jobs: number;
  /** Jobs per bulk enqueue call. */
  chunk: number;
  /** Total in-process worker concurrency per system. */
  concurrency: number;
  /** Latency probes per second, and for how many seconds. */
  probeRate: number;
  probeSeconds: number;
  /** Longest a processing or probe phase may take before it is cut off and reported as partial. */
  capMs: number;
}

export interface Progress {
  /** Jobs recorded as finished by the queue itself (not merely handled). */
  finished: number;
  /** Epoch ms of the latest recorded finish, by the queue's own clock. */
  lastFinishedAt: number | null;
}

/** One system under test. The harness owns all timing so every system is measured the same way. */
export interface Subject {
  readonly label: string;
  /** How its workers are configured, printed under the table. */
  readonly workerSettings: string;
  /** Enqueues `count` no-op jobs in one bulk call. */
  enqueueBulk(count: number): Promise<void>;
  /** Starts in-process workers with the shared total concurrency. */
  startWorkers(): Promise<void>;
  progress(): Promise<Progress>;
  /** Drops jobs a cut-off processing phase left queued, so probes do not wait behind them. */
  discardBacklog(): Promise<void>;
  /** Enqueues one no-op job marked as a latency probe. */
  enqueueProbe(): Promise<void>;
  /** Enqueue-to-start latencies (ms) of the probes that have started so far. */
  probeLatencies(): Promise<number[]>;
}

export interface Row {
  label: string;
  enqueuePerSec: number;
  processPerSec: number;
  /** Jobs finished in the processing phase; below `jobs` when the phase was cut off. */
  processed: number;
  p50: number | null;
  p99: number | null;
  probesStarted: number;
  probes: number;
  rssMb?: number;
}

const POLL_MS = 250;

export async function measure(subject: Subject, s: Settings): Promise<Row> {
  const enqueuePerSec = await measureEnqueue(subject, s);
  const processing = await measureProcessing(subject, s);
  await subject.discardBacklog();
  const latency = await measureLatency(subject, s);
  return { label: subject.label, enqueuePerSec, ...processing, ...latency };
}

/** Sequential bulk calls, as a producer importing a large batch would make them. */
async function measureEnqueue(subject: Subject, s: Settings): Promise<number> {
  const started = performance.now();
  for (let done = 0; done < s.jobs; done += s.chunk) await subject.enqueueBulk(Math.min(s.chunk, s.jobs - done));
  return s.jobs / ((performance.now() - started) / 1000);
}

/**
 * From starting idle workers on a full queue to the last recorded finish. Epoch ms, because the end time
 * comes from the queue's records (pg-boss stamps it with PostgreSQL's clock, on this same machine).
 */
async function measureProcessing(subject: Subject, s: Settings) {
  const started = Date.now();
  await subject.startWorkers();
  let progress = await subject.progress();
  while (progress.finished < s.jobs && Date.now() - started < s.capMs) {
    await sleep(POLL_MS);
    progress = await subject.progress();
  }
  const complete = progress.finished >= s.jobs;
  const end = complete && progress.lastFinishedAt !== null ? progress.lastFinishedAt : Date.now();
  return { processPerSec: progress.finished / ((end - started) / 1000), processed: progress.finished };
}

/**
 * Open loop: probes go out on schedule whether or not earlier enqueues have returned, so a slow enqueue
 * shows up as latency instead of quietly lowering the offered rate.
 */
async function measureLatency(subject: Subject, s: Settings) {
  const probes = s.probeRate * s.probeSeconds;
  await sleep(1000); // let the workers go idle after the processing phase
  const started = performance.now();
  const sent: Promise<void>[] = [];
  for (let i = 0; i < probes; i++) {
    const wait = started + (i * 1000) / s.probeRate - performance.now();
    if (wait > 0) await sleep(wait);
    sent.push(subject.enqueueProbe());
  }
  await Promise.all(sent);
  const latencies = await waitForProbes(subject, probes, s.capMs);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), probesStarted: latencies.length, probes };
}

async function waitForProbes(subject: Subject, probes: number, capMs: number): Promise<number[]> {
  const started = Date.now();
  let latencies = await subject.probeLatencies();
  while (latencies.length < probes && Date.now() - started < capMs) {
    await sleep(POLL_MS);
    latencies = await subject.probeLatencies();
  }
  return latencies;
}

/** Nearest-rank percentile; null for no samples. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
