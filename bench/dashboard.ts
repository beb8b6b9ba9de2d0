/**
 * Dashboard query benchmark: a store filled with BENCH_JOBS (100,000) jobs across 4 vendors, 3 types, every
 * state and a week of creation times, each with metadata {recordId, source, page}; then the real API on
 * loopback, and over HTTP the first page of GET /v1/jobs and of each filter the dashboard offers (state, type,
 * batch, date range, a unique and a common metadata value, counts, the admin's list of every vendor), timed
 * BENCH_REQUESTS (40) times each after 3 untimed: median and p95. On SQLite and on PostgreSQL (a fresh
 * database `pixq_bench_dashboard` on BENCH_PG_URL, postgres://postgres@127.0.0.1:5432). Prints a markdown
 * table (target: every median and p95 under BENCH_TARGET_MS, 200) and the query plans of the metadata filter.
 *
 * The jobs are inserted through the store's own insertJobs (the metadata index is written as on submission),
 * 5,000 per transaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { sql } from 'kysely';
import { ulid } from 'ulidx';
import pino from 'pino';
import { buildServer } from '../src/api/index.js';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { transaction, type JobState } from '../src/store/index.js';
import { insertJobs, type NewJobRow } from '../src/store/sql/insert-jobs.js';

const env = process.env;
const JOBS = Number(env.BENCH_JOBS ?? 100_000);
const REQUESTS = Number(env.BENCH_REQUESTS ?? 40);
const TARGET_MS = Number(env.BENCH_TARGET_MS ?? 200);
const PG_URL = env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';
const ADMIN_KEY = 'bench-admin-key-0123456789';
const TYPES = ['transform', 'remove-background', 'face-crop'];
const SOURCES = ['shopify', 'upload', 'api'];
// Mostly finished, as a store that has run a while: 80% succeeded, 5% failed, 3% cancelled, the rest waiting or running.
const STATES: [JobState, number][] = [
  ['succeeded', 0.8],
  ['failed', 0.05],
  ['cancelled', 0.03],
  ['queued', 0.08],
  ['delayed', 0.02],
  ['running', 0.02],
];
const WEEK_MS = 7 * 24 * 3600_000;

interface Row {
  store: string;
  query: string;
  matched: number;
  p50: number;
  p95: number;
}

const rows: Row[] = [];
const plans: string[] = [];
for (const store of ['sqlite', 'postgres'] as const) await run(store);
printTable();

async function run(store: 'sqlite' | 'postgres') {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pixq-bench-dashboard-'));
  const databaseUrl = store === 'postgres' ? await freshDatabase() : undefined;
  const config = loadConfig({
    PIXQ_DATA_DIR: dataDir,
    ...(databaseUrl && { DATABASE_URL: databaseUrl }),
    PIXQ_ADMIN_KEY: ADMIN_KEY,
    PIXQ_RATE_REQUESTS: '10000000/1m',
    PIXQ_LOG_LEVEL: 'warn',
  });
  const services = await openServices(config, pino({ level: 'warn' }));
  const app = await buildServer(services);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  try {
    const vendors = [];
    for (const name of ['acme', 'globex', 'initech', 'umbrella']) {
      const res = await call(base, ADMIN_KEY, 'POST', '/v1/vendors', { name });
      vendors.push({ id: res.vendor.id as string, key: res.apiKey as string });
    }
    const started = Date.now();
    const batchId = await fill(
      services.engine.store,
      vendors.map((v) => v.id),
    );
    console.error(`${store}: ${JOBS} jobs inserted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // As autovacuum would have it on a store that has run a while; pixq never analyzes SQLite, so neither does this.
    if (store === 'postgres') await sql`analyze`.execute(services.engine.store.db);

    const now = Date.now();
    const day = (n: number) => new Date(now - n * 24 * 3600_000).toISOString();
    const vendor = vendors[0].key;
    const queries: [string, string, string][] = [
      ['first page', vendor, '/v1/jobs'],
      ['state=failed', vendor, '/v1/jobs?state=failed'],
      ['state=running', vendor, '/v1/jobs?state=running'],
      ['type=face-crop', vendor, '/v1/jobs?type=face-crop'],
      ['batchId (200 jobs)', vendor, `/v1/jobs?batchId=${batchId}`],
      ['one day, 3 days ago', vendor, `/v1/jobs?createdAfter=${day(4)}&createdBefore=${day(3)}`],
      ['metadata recordId (unique)', vendor, '/v1/jobs?metadata=recordId=rec-40'],
      ['metadata source=api (1 in 3)', vendor, '/v1/jobs?metadata=source=api'],
      ['metadata source + page', vendor, '/v1/jobs?metadata=source=api&metadata=page=7'],
      ['metadata + state=failed', vendor, '/v1/jobs?metadata=source=api&state=failed'],
      ['count (all)', vendor, '/v1/jobs/count'],
      ['count state=failed', vendor, '/v1/jobs/count?state=failed'],
      ['count metadata source=api', vendor, '/v1/jobs/count?metadata=source=api'],
      ['admin: first page, all vendors', ADMIN_KEY, '/v1/jobs'],
      ['admin: state=failed, all vendors', ADMIN_KEY, '/v1/jobs?state=failed'],
      ['admin: metadata recordId', ADMIN_KEY, '/v1/jobs?metadata=recordId=rec-40'],
      ['admin: count (all)', ADMIN_KEY, '/v1/jobs/count'],
      ['stats series, 60 min', vendor, '/v1/stats/series?minutes=60'],
    ];
    for (const [label, key, url] of queries) {
      for (let i = 0; i < 3; i++) await call(base, key, 'GET', url);
      const times: number[] = [];
      let matched = 0;
      for (let i = 0; i < REQUESTS; i++) {
        const t = performance.now();
        const body = await call(base, key, 'GET', url);
        times.push(performance.now() - t);
        matched = body.jobs?.length ?? body.count ?? body.buckets?.length ?? 0;
      }
      times.sort((a, b) => a - b);
      rows.push({
        store,
        query: label,
        matched,
        p50: times[Math.floor(times.length / 2)],
        p95: times[Math.ceil(times.length * 0.95) - 1],
      });
    }
    plans.push(`${store}:\n${await metadataPlan(services.engine.store, vendors[0].id)}`);
  } finally {
    await app.close();
    await services.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (databaseUrl) await dropDatabase();
  }
}

/** Inserts the jobs, oldest first, with ids of their creation time; returns the id of one 200-job batch. */
async function fill(store: Parameters<typeof transaction>[0], vendorIds: string[]): Promise<string> {
  const batchId = ulid();
  const now = Date.now();
  const PER_TX = 5000;
  for (let start = 0; start < JOBS; start += PER_TX) {
    const jobs: NewJobRow[] = [];
    for (let i = start; i < Math.min(JOBS, start + PER_TX); i++) {
      const createdAt = now - WEEK_MS + Math.floor((i / JOBS) * WEEK_MS);
      const state = pickState(i);
      const finished = ['succeeded', 'failed', 'cancelled'].includes(state);
      jobs.push({
        id: ulid(createdAt),
        // 40% to the first vendor, 20% to each other.
        vendor_id: vendorIds[i % 5 < 2 ? 0 : (i % 5) - 1],
        type: TYPES[i % TYPES.length],
        state,
        priority: 0,
        options: '{}',
        input_blob: null,
        input_url: 'https://example.com/image.jpg',
        attempts: finished ? 1 : 0,
        max_attempts: 3,
        backoff_base_ms: 1000,
        backoff_max_ms: 60_000,
        timeout_ms: 60_000,
        run_at: createdAt,
        cancel_requested: 0,
        progress_percent: finished ? 100 : 0,
        idempotency_key: null,
        batch_id: i >= JOBS - 1000 && i % 5 === 0 ? batchId : null,
        metadata: JSON.stringify({
          recordId: `rec-${i}`,
          source: SOURCES[Math.floor(i / 7) % SOURCES.length],
          page: i % 50,
        }),
        created_at: createdAt,
        updated_at: createdAt,
      });
    }
    await transaction(store, (tx) => insertJobs(tx, store.dialect, jobs));
    // State-specific columns insertJobs leaves at their defaults.
    await transaction(store, (tx) =>
      tx
        .updateTable('jobs')
        .set((eb) => ({ started_at: eb.ref('created_at'), finished_at: sql<number>`created_at + 2000` }))
        .where('state', 'in', ['succeeded', 'failed', 'cancelled'])
        .where('finished_at', 'is', null)
        .execute(),
    );
  }
  return batchId;
}

function pickState(i: number): JobState {
  // A fixed scatter (not random) so both stores hold the same jobs.
  let x = ((i * 7919) % 1000) / 1000;
  for (const [state, share] of STATES) {
    if (x < share) return state;
    x -= share;
  }
  return 'succeeded';
}

async function metadataPlan(store: Parameters<typeof transaction>[0], vendorId: string): Promise<string> {
  const explain = store.dialect === 'postgres' ? sql`explain` : sql`explain query plan`;
  // The statement selectJobPage runs, with bound parameters (SQLite plans literals differently).
  const { rows: plan } = await sql<Record<string, unknown>>`${explain} select jobs.* from job_metadata m cross join jobs
    where m.key = ${'recordId'} and m.value = ${'rec-40'} and m.vendor_id = ${vendorId} and jobs.id = m.job_id
    order by m.job_id desc limit ${21}`.execute(store.db);
  return plan.map((r) => `  ${String(r['QUERY PLAN'] ?? r.detail)}`).join('\n');
}

async function call(base: string, key: string, method: string, url: string, json?: unknown): Promise<any> {
  const send = () =>
    fetch(base + url, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(json !== undefined && { 'content-type': 'application/json' }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  // A kept-alive connection the server closed while the store was filling fails once; a new one is opened.
  const res = await send().catch(send);
  const body = await res.json();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function freshDatabase(): Promise<string> {
  await dropDatabase();
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query('create database pixq_bench_dashboard');
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = '/pixq_bench_dashboard';
  return url.toString();
}

async function dropDatabase() {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query('drop database if exists pixq_bench_dashboard with (force)');
  await admin.end();
}

function printTable() {
  const fmt = (ms: number) => ms.toFixed(1);
  console.log(
    `\n${JOBS} jobs, ${REQUESTS} requests per query, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  console.log('| query | rows | SQLite p50 ms | SQLite p95 ms | PostgreSQL p50 ms | PostgreSQL p95 ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows.filter((x) => x.store === 'sqlite')) {
    const p = rows.find((x) => x.store === 'postgres' && x.query === r.query);
    console.log(
      `| ${r.query} | ${r.matched} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${p ? fmt(p.p50) : '-'} | ${p ? fmt(p.p95) : '-'} |`,
    );
  }
  const slow = rows.filter((r) => r.p50 > TARGET_MS || r.p95 > TARGET_MS);
  console.log(
    slow.length === 0
      ? `\nevery median and p95 under ${TARGET_MS} ms`
      : `\nover ${TARGET_MS} ms: ${slow.map((r) => `${r.store} ${r.query}`).join(', ')}`,
  );
  console.log(`\nmetadata filter plans:\n${plans.join('\n')}`);
}
