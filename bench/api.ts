/**
 * API submission benchmark: autocannon with 200 connections POSTing URL jobs (transform, input.url on an
 * allowlisted 127.0.0.1 static image server) to a real pixq API on the embedded SQLite store for 30 s.
 * Workers are OFF: only submission is measured (auth, rate limits, validation, URL check, enqueue).
 *
 * The API runs in a child process (this file with --serve) so autocannon's own CPU use does not share the
 * server's event loop. The vendor is created, with raised rate limits, through the admin API. Afterwards
 * every 202 must be a job in the store. Prints a markdown table and the checks.
 *
 * Then the same load runs against a Fastify route that does nothing, as a reference for what the machine
 * allows (BENCH_FLOOR=0 skips it).
 *
 * Settings: BENCH_CONNECTIONS (200), BENCH_SECONDS (30), BENCH_P99_MS (25), BENCH_CPU_PROF=dir to write a
 * V8 CPU profile of the server process, BENCH_DATA_PARENT (os.tmpdir()) for where the SQLite file lives.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';

interface Histogram {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  total: number;
}
interface AutocannonResult {
  requests: Histogram & { sent: number };
  latency: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  duration: number;
  statusCodeStats: Record<string, { count: number | string }>;
}
// autocannon ships no type declarations; this is the part of its programmatic API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as (
  opts: Record<string, unknown>,
) => Promise<AutocannonResult>;

const ADMIN_KEY = 'bench-admin-key-0123456789';
const self = fileURLToPath(import.meta.url);
const env = process.env;

if (process.argv.includes('--serve')) await serve();
else if (process.argv.includes('--floor')) await serveFloor();
else await main();

/**
 * Child for the reference row: Fastify with one POST /v1/jobs route that parses the JSON body and answers
 * 202 without doing anything. Under the same load it shows what this machine allows any Fastify server.
 */
async function serveFloor() {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  app.post('/v1/jobs', async (_request, reply) => reply.code(202).send({ id: 'floor', state: 'queued' }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }));
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

/** Child: the API alone, as `pixq api` runs it, on loopback. Prints its port as one JSON line. */
async function serve() {
  const { loadConfig } = await import('../src/config.js');
  const { openServices } = await import('../src/services.js');
  const { buildServer } = await import('../src/api/index.js');
  const services = await openServices(loadConfig());
  const app = await buildServer(services);
  await app.listen({ host: '127.0.0.1', port: 0 });
  // Event-loop delay shows whether slow answers were the server blocked (synchronous SQLite, GC) or queued.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }));
  process.on('SIGUSR2', () => {
    const ms = (ns: number) => Math.round(ns / 1e5) / 10;
    console.log(
      JSON.stringify({ loop: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) } }),
    );
  });
  process.on('SIGTERM', () => {
    void app
      .close()
      .then(() => services.close())
      .then(() => process.exit(0));
  });
}

async function main() {
  const connections = Number(env.BENCH_CONNECTIONS ?? 200);
  const seconds = Number(env.BENCH_SECONDS ?? 30);
  const p99Target = Number(env.BENCH_P99_MS ?? 25);
  const dataDir = fs.mkdtempSync(path.join(env.BENCH_DATA_PARENT ?? os.tmpdir(), 'pixq-bench-api-'));

  const image = await smallJpeg();
  const images = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length }).end(image),
  );
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  const imageUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/photo.jpg`;

  const profDir = env.BENCH_CPU_PROF;
  const child = spawn(
    process.execPath,
    [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), '--import', 'tsx', self, '--serve'],
    {
      env: {
        ...env,
        PIXQ_DATA_DIR: dataDir,
        DATABASE_URL: '',
        PIXQ_ADMIN_KEY: ADMIN_KEY,
        PIXQ_URL_ALLOWLIST: '127.0.0.1',
        PIXQ_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: child.stdout! });
  const nextLine = () =>
    new Promise<Record<string, any>>((resolve) => lines.once('line', (line) => resolve(JSON.parse(line))));
  const port = await Promise.race([
    nextLine().then((l) => l.port as number),
    new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`API exited with ${code} before listening`))),
    ),
  ]);
  const base = `http://127.0.0.1:${port}`;

  try {
    // A vendor whose budgets cannot be the limiting factor, set through the admin API like an operator would.
    const big = { limit: 100_000_000, windowMs: 3_600_000 };
    const created = await fetch(`${base}/v1/vendors`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', rateLimits: { requests: big, image: big } }),
    });
    if (created.status !== 201) throw new Error(`creating the vendor: ${created.status} ${await created.text()}`);
    const { apiKey, vendor } = (await created.json()) as { apiKey: string; vendor: { id: string } };

    const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    const body = JSON.stringify({
      type: 'transform',
      input: { url: imageUrl },
      options: { resize: { width: 256 }, format: 'webp' },
    });
    // Warm-up: JIT, statement cache, connection setup; its jobs are not counted.
    await autocannon({ url: `${base}/v1/jobs`, connections: 20, duration: 3, method: 'POST', headers, body });
    const before = await countJobs(dataDir, vendor.id);

    // The id of every job answered 202, to check each one is in the store afterwards.
    const acceptedIds: string[] = [];
    const onResponse = (status: number, responseBody: string) => {
      if (status === 202) acceptedIds.push((JSON.parse(responseBody) as { id: string }).id);
    };
    console.error(`benchmarking: ${connections} connections, ${seconds} s, POST /v1/jobs (URL input), workers off ...`);
    const result = await autocannon({
      url: base,
      connections,
      duration: seconds,
      requests: [{ method: 'POST', path: '/v1/jobs', headers, body, onResponse }],
    });
    // Requests still in flight when autocannon stops are completed by the server but never read: give them
    // a moment, so "stored" includes them, and report them separately.
    await new Promise((r) => setTimeout(r, 1000));
    const stored = (await countJobs(dataDir, vendor.id)) - before;
    const missing = await missingJobs(dataDir, acceptedIds);
    const loopLine = nextLine();
    child.kill('SIGUSR2');
    const { loop } = (await loopLine) as { loop: { p50: number; p99: number; max: number } };
    const accepted = Number(result.statusCodeStats['202']?.count ?? 0);
    const failures = result.errors + result.timeouts + result.non2xx + result.resets;

    console.log(
      `\n### API submission (SQLite, ${connections} connections, ${seconds} s, workers off, ${os.cpus().length} CPUs, Node ${process.version})\n`,
    );
    console.log(
      '| requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors (incl. non-2xx, timeouts) | 202 answers | jobs stored | accepted but missing |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    console.log(
      `| ${result.requests.total} | ${Math.round(result.requests.average)} | ${result.latency.p50} | ${result.latency.p90} | ${result.latency.p99} | ${result.latency.max} | ${failures} | ${accepted} | ${stored} | ${missing} |`,
    );
    console.log(
      `\nServer event-loop delay over warm-up and run: p50 ${loop.p50} ms, p99 ${loop.p99} ms, max ${loop.max} ms.`,
    );
    if (env.BENCH_FLOOR !== '0') {
      const floor = await measureFloor(connections, seconds, headers, body);
      console.log(
        `\nReference, same load on a Fastify route that does nothing (BENCH_FLOOR=0 skips it): ` +
          `${Math.round(floor.requests.average)} req/s, p50 ${floor.latency.p50} ms, p90 ${floor.latency.p90} ms, ` +
          `p99 ${floor.latency.p99} ms, ${floor.errors + floor.timeouts + floor.non2xx} errors.`,
      );
    }
    const checks = [
      [
        failures === 0,
        `no errors or non-2xx answers (${failures}; status codes ${JSON.stringify(result.statusCodeStats)})`,
      ],
      [
        missing === 0 && acceptedIds.length === accepted && stored >= accepted && stored - accepted <= connections,
        `every accepted job is in the store (${accepted} answered 202, all ${acceptedIds.length} ids looked up, ${missing} missing; ` +
          `${stored - accepted} more stored: requests in flight when the run stopped, at most one per connection)`,
      ],
      [result.latency.p99 < p99Target, `p99 submit latency below ${p99Target} ms (${result.latency.p99} ms)`],
    ] as const;
    console.log('');
    for (const [ok, text] of checks) console.log(`- ${ok ? 'PASS' : 'FAIL'}: ${text}`);
    process.exitCode = checks.every(([ok]) => ok) ? 0 : 1;
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    images.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The same autocannon run against serveFloor() in a child process of its own. */
async function measureFloor(connections: number, seconds: number, headers: Record<string, string>, body: string) {
  console.error(`reference: the same load on a do-nothing Fastify route ...`);
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--floor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve) =>
      readline.createInterface({ input: child.stdout! }).once('line', resolve),
    );
    const url = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/v1/jobs`;
    await autocannon({ url, connections: 20, duration: 3, method: 'POST', headers, body });
    return await autocannon({ url, connections, duration: seconds, method: 'POST', headers, body });
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

/** Counts the vendor's jobs straight from the SQLite file, not through the API under test. */
async function countJobs(dataDir: string, vendorId: string): Promise<number> {
  const { openStore } = await import('../src/store/index.js');
  const store = await openStore({ dataDir });
  try {
    const row = await store.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('vendor_id', '=', vendorId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await store.close();
  }
}

/** How many of the accepted job ids are not in the store (looked up in chunks). */
async function missingJobs(dataDir: string, ids: string[]): Promise<number> {
  const { openStore } = await import('../src/store/index.js');
  const store = await openStore({ dataDir });
  try {
    let found = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const row = await store.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('id', 'in', chunk)
        .executeTakeFirstOrThrow();
      found += Number(row.n);
    }
    return ids.length - found;
  } finally {
    await store.close();
  }
}

async function smallJpeg(): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .jpeg()
    .toBuffer();
}
