/**
 * Scale-out benchmark: jobs/s of 1, 2 and 3 `pixq worker` processes on one PostgreSQL database, each a real
 * compiled CLI process (`node bin/pixq.js worker`) as an operator runs it. The benchmark process enqueues the
 * backlog first, then starts the workers; throughput is counted from the store (first start to last finish),
 * and the CPU seconds each side used say what limits it. Settings: BENCH_JOBS (default 20,000 no-op jobs),
 * BENCH_SLOTS (noop slots per worker process, 32), BENCH_JOB_MS (each job's sleep, 0), BENCH_PG_URL,
 * BENCH_WORKERS (comma list of process counts, "1,2,3").
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { cleanUp, cleanUpOnSignals, defer, tempDir } from './queue/cleanup.js';
import { describeMachine } from './machine.js';
import { onlyNoop } from './queue/pixq.js';
import { freshDatabase, postgresVersion } from './queue/postgres.js';
import { stop } from './queue/rss.js';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const env = process.env;
const JOBS = Number(env.BENCH_JOBS ?? 20_000);
const SLOTS = Number(env.BENCH_SLOTS ?? 32);
const JOB_MS = Number(env.BENCH_JOB_MS ?? 0);
const PG_URL = env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const COUNTS = (env.BENCH_WORKERS ?? '1,2,3').split(',').map(Number);
const CHUNK = 1_000;
const TIMEOUT_MS = 10 * 60_000;

interface Row {
  workers: number;
  jobsPerSecond: number;
  seconds: number;
  workerCpuSeconds: number;
  postgresCpuSeconds: number;
}

/** User plus system CPU seconds of one process, from /proc (clock ticks are 100 a second on Linux). */
function cpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0; // the process has gone
  }
}

/** CPU seconds used so far by every PostgreSQL server process on this machine (the server is local). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres') total += cpuSeconds(Number(entry));
    } catch {
      // gone between readdir and read
    }
  }
  return total;
}

function spawnWorker(databaseUrl: string): ChildProcess {
  const child = spawn(process.execPath, ['bin/pixq.js', 'worker'], {
    cwd: REPO,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PIXQ_DATA_DIR: tempDir('pixq-bench-worker-'),
      PIXQ_ENABLE_NOOP: '1',
      PIXQ_WORKER_CONCURRENCY: onlyNoop(SLOTS),
      PIXQ_LOG_LEVEL: 'warn',
      PIXQ_MODEL_DOWNLOAD: '0',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  defer(`stop worker ${child.pid}`, () => stop(child));
  return child;
}

async function measure(workers: number): Promise<Row> {
  const databaseUrl = await freshDatabase(PG_URL, `workers${workers}`);
  const services = await openServices(
    loadConfig({ DATABASE_URL: databaseUrl, PIXQ_DATA_DIR: tempDir('pixq-bench-'), PIXQ_ENABLE_NOOP: '1' }),
  );
  defer('close the enqueuing services', () => services.close());
  const { engine } = services;
  const vendorId = (await engine.vendors.create('bench')).id;
  for (let done = 0; done < JOBS; done += CHUNK) {
    await engine.jobs.enqueue(
      vendorId,
      Array(Math.min(CHUNK, JOBS - done)).fill({ type: 'noop', options: { ms: JOB_MS } }),
    );
  }
  const pgBefore = postgresCpuSeconds();
  const children = Array.from({ length: workers }, () => spawnWorker(databaseUrl));
  const deadline = Date.now() + TIMEOUT_MS;
  let succeeded = 0;
  let workerCpu = 0;
  while (succeeded < JOBS) {
    if (Date.now() > deadline)
      throw new Error(`${workers} workers: only ${succeeded} of ${JOBS} succeeded in ${TIMEOUT_MS / 1000} s`);
    await sleep(250);
    // Read before the workers stop: a process's CPU time is gone with it.
    workerCpu = children.reduce((sum, c) => sum + cpuSeconds(c.pid!), 0);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from jobs where state = 'succeeded'`.execute(
      engine.store.db,
    );
    succeeded = rows[0].n;
  }
  const postgresCpu = postgresCpuSeconds() - pgBefore;
  const span = await sql<{
    first: string;
    last: string;
  }>`select min(started_at) as first, max(finished_at) as last from jobs`.execute(engine.store.db);
  const seconds = (Number(span.rows[0].last) - Number(span.rows[0].first)) / 1000;
  await cleanUp();
  return {
    workers,
    seconds,
    jobsPerSecond: JOBS / seconds,
    workerCpuSeconds: workerCpu,
    postgresCpuSeconds: postgresCpu,
  };
}

function table(rows: Row[]): string {
  const lines = [
    '| worker processes | jobs/s | wall s | worker CPU s | PostgreSQL CPU s | CPU s per 1,000 jobs |',
    '|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const perThousand = ((r.workerCpuSeconds + r.postgresCpuSeconds) / JOBS) * 1000;
    lines.push(
      `| ${r.workers} | ${Math.round(r.jobsPerSecond).toLocaleString('en-US')} | ${r.seconds.toFixed(1)} | ` +
        `${r.workerCpuSeconds.toFixed(1)} | ${r.postgresCpuSeconds.toFixed(1)} | ${perThousand.toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  cleanUpOnSignals();
  execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: REPO,
  });
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ');
  console.log(
    `Machine: ${describeMachine()}, load average ${load()} at the start, ` +
      `Node ${process.version}, ${await postgresVersion(PG_URL)} on the same machine.\n` +
      `${JOBS.toLocaleString('en-US')} noop jobs (${JOB_MS} ms each) enqueued before the workers start; ${SLOTS} slots per worker process.\n`,
  );
  const rows: Row[] = [];
  for (const workers of COUNTS) {
    console.error(`measuring ${workers} worker process(es) ...`);
    rows.push(await measure(workers));
  }
  console.log(table(rows));
  console.log(`\nLoad average at the end: ${load()}.`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => cleanUp());
