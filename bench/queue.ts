/**
 * Queue benchmark: pixq (SQLite and PostgreSQL) against BullMQ and pg-boss on no-op jobs, measured by one
 * harness (bench/queue/measure.ts) with the same job count, chunking, concurrency and probe rate.
 * Prints one markdown table plus the targets. Settings: BENCH_JOBS, BENCH_CHUNK, BENCH_CONCURRENCY,
 * BENCH_PROBE_RATE, BENCH_PROBE_SECONDS, BENCH_CAP_SECONDS, BENCH_PG_URL, BENCH_REDIS_URL, and
 * BENCH_ONLY (comma list of row keys, e.g. "pixq-sqlite,bullmq,rss") to run a subset.
 */
import os from 'node:os';
import { openBullmq } from './queue/bullmq.js';
import { cleanUp, cleanUpOnSignals } from './queue/cleanup.js';
import { describeMachine } from './machine.js';
import { measure, type Settings, type Subject } from './queue/measure.js';
import { openPgBoss } from './queue/pgboss.js';
import { openPixq } from './queue/pixq.js';
import { freshDatabase, postgresVersion } from './queue/postgres.js';
import { table, targetLines, type RowKey, type Rows } from './queue/report.js';
import { idleRss } from './queue/rss.js';

const env = process.env;
const num = (name: string, fallback: number) => Number(env[name] ?? fallback);

const settings: Settings = {
  jobs: num('BENCH_JOBS', 20_000),
  chunk: num('BENCH_CHUNK', 1_000),
  concurrency: num('BENCH_CONCURRENCY', 32),
  probeRate: num('BENCH_PROBE_RATE', 200),
  probeSeconds: num('BENCH_PROBE_SECONDS', 5),
  capMs: num('BENCH_CAP_SECONDS', 30) * 1000,
};
const pgUrl = env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const only = env.BENCH_ONLY?.split(',').map((k) => k.trim());
const wanted = (key: string) => !only || only.includes(key);

const SUBJECTS: Record<RowKey, () => Promise<Subject>> = {
  'pixq-sqlite': () => openPixq('sqlite', settings, pgUrl),
  'pixq-postgres': () => openPixq('postgres', settings, pgUrl),
  bullmq: () => openBullmq(settings, redisUrl),
  // Same total concurrency as the others: one poller taking the whole budget per fetch.
  pgboss: () =>
    openPgBoss(settings, pgUrl, { pollers: 1, batchSize: settings.concurrency, pollingIntervalSeconds: 0.5 }),
  // Reference only: what pg-boss does when its batch, not the shared concurrency, sets the pace.
  'pgboss-ref': () =>
    openPgBoss(settings, pgUrl, {
      pollers: 1,
      batchSize: 1000,
      pollingIntervalSeconds: 0.5,
      note: 'batch 1000, reference',
    }),
};

async function runSubjects(rows: Rows, notes: string[]) {
  for (const [key, open] of Object.entries(SUBJECTS) as [RowKey, () => Promise<Subject>][]) {
    if (!wanted(key)) continue;
    console.error(`measuring ${key} ...`);
    try {
      const subject = await open();
      notes.push(`- ${subject.label}: ${subject.workerSettings}`);
      rows[key] = await measure(subject, settings);
    } finally {
      await cleanUp(); // each system runs alone: nothing of the previous one keeps polling or holding memory
    }
  }
}

/** Idle RSS of the real CLI on each store whose row was measured. */
async function measureRss(rows: Rows) {
  for (const key of ['pixq-sqlite', 'pixq-postgres'] as const) {
    const row = rows[key];
    if (!row || !wanted('rss')) continue;
    console.error(`measuring idle RSS (${key}) ...`);
    try {
      const url = key === 'pixq-postgres' ? await freshDatabase(pgUrl, 'rss') : undefined;
      row.rssMb = await idleRss(url);
    } finally {
      await cleanUp();
    }
  }
}

const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

async function header(): Promise<string> {
  const s = settings;
  return [
    `Machine: ${describeMachine()}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, load average ${loadAverage()} at the start, Node ${process.version}, ` +
      `${await postgresVersion(pgUrl)}, Redis at ${redisUrl}`,
    `N = ${s.jobs.toLocaleString('en-US')} no-op jobs enqueued in chunks of ${s.chunk}; total worker concurrency ${s.concurrency} ` +
      `per system, in this process; latency: ${s.probeRate}/s single enqueues for ${s.probeSeconds} s with idle workers; ` +
      `phases cut off after ${s.capMs / 1000} s.`,
  ].join('\n');
}

async function main() {
  cleanUpOnSignals();
  const rows: Rows = {};
  const notes: string[] = [];
  const intro = await header();
  await runSubjects(rows, notes);
  const rssNotes = [
    '- Idle RSS: VmRSS of the compiled `node bin/pixq.js start` (API and workers) 5 s after it logs "pixq running", then SIGTERM.',
  ];
  await measureRss(rows);
  console.log(
    [
      intro,
      table(rows, settings),
      `Targets:\n${targetLines(rows)}`,
      `Settings:\n${[...notes, ...rssNotes].join('\n')}`,
      `Load average at the end: ${loadAverage()} (the machine is shared; compare rows of one run, not across runs).`,
    ].join('\n\n'),
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanUp();
    // Every handle should be closed by now; if a library leaves one behind, do not hang forever.
    setTimeout(() => {
      console.error('open handles remained after cleanup; exiting');
      process.exit(process.exitCode ?? 0);
    }, 5000).unref();
  });
