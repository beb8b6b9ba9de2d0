import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEngine, type Engine } from '../../src/engine/index.js';
import { DEFAULT_OPTIONS } from '../support/engine.js';
import { privatePostgresUnavailable, startPrivatePostgres, type PrivatePostgres } from '../support/private-pg.js';
import { spawnPixq, stopAll, waitUntil, workerReady, type PixqProcess } from '../support/processes.js';
import { tempDir } from '../support/stores.js';
import { GENEROUS_RATES, recordEvents, spawnApi, type SseRecorder } from './harness.js';

/**
 * PostgreSQL faults with real processes: one `pixq api` and three `pixq worker` processes on a private
 * cluster that the tests restart and stop. Every wait is for an observable state.
 */
const unavailable = privatePostgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL fault tests: ${unavailable}`);

describe.skipIf(Boolean(unavailable))('faults: PostgreSQL restarts and outages', () => {
  let server: PrivatePostgres;
  /** Services still open: a test that timed out never reached its `finally`. */
  const open = new Set<() => Promise<void>>();
  beforeAll(async () => {
    server = await startPrivatePostgres();
  });
  afterAll(async () => {
    for (const close of open) await close();
    await server?.destroy();
  });

  /** A fresh database on the private server, an engine for the test's reads, the API and three workers. */
  async function service(database: string) {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`create database ${database}`);
    await admin.end();
    const url = new URL(server.url);
    url.pathname = `/${database}`;
    const location = { dataDir: tempDir(), databaseUrl: url.toString() };
    const engine = await openEngine(location, DEFAULT_OPTIONS);
    const vendor = await engine.vendors.create('faults');
    const { key } = await engine.apiKeys.issue(vendor.id);
    const env = {
      DATABASE_URL: location.databaseUrl,
      PIXQ_DATA_DIR: location.dataDir,
      PIXQ_ENABLE_NOOP: '1',
      PIXQ_WORKER_CONCURRENCY: 'noop=4',
      PIXQ_POLL_MS: '200',
      PIXQ_LOG_LEVEL: 'info',
      PIXQ_SHUTDOWN_GRACE_MS: '2000',
      ...GENEROUS_RATES,
    };
    const workers = [0, 1, 2].map(() => spawnPixq(['worker'], env));
    let api;
    try {
      api = await spawnApi(env);
      // Generous: on a loaded machine starting four Node processes from source takes a while.
      await Promise.all(workers.map((w) => workerReady(w, 180_000)));
    } catch (err) {
      await stopAll([...workers, ...(api ? [api.process] : [])]);
      await engine.close();
      throw err;
    }
    const close = async () => {
      if (!open.delete(close)) return;
      await stopAll([api.process, ...workers]);
      await engine.close();
    };
    open.add(close);
    return { engine, vendorId: vendor.id, key, api, workers, processes: [api.process, ...workers], close };
  }

  /** The test's own reads fail while the server is down; a failed read is "not yet". */
  const totals = (engine: Engine) =>
    engine.stats(3_600_000).then(
      (s) => s.totals,
      () => ({}) as Record<string, number>,
    );

  async function storedEventIds(engine: Engine, vendorId: string) {
    const rows = await engine.store.db.selectFrom('events').select('id').where('vendor_id', '=', vendorId).execute();
    return rows.map((r) => Number(r.id));
  }

  /** Every stored event reached the stream, the stream never broke, and every job's success was among them. */
  async function expectEveryEvent(engine: Engine, vendorId: string, stream: SseRecorder, jobs: number) {
    const stored = await storedEventIds(engine, vendorId);
    await waitUntil(
      () => {
        const received = new Set(stream.ids);
        return stored.every((id) => received.has(id));
      },
      60_000,
      'the event stream to deliver every stored event',
    );
    expect(stream.ended).toBeUndefined();
    const succeeded = new Set(stream.events.filter((e) => e.state === 'succeeded').map((e) => e.jobId));
    expect(succeeded.size).toBe(jobs);
    return { stored: stored.length, received: stream.ids.length };
  }

  function reconnections(p: PixqProcess) {
    return p.logs.filter((l) => l.msg === 'event bus reconnected; missed events delivered') as { caughtUp: number }[];
  }

  it(
    'a restart mid-run: 2,000 noop jobs on three workers all succeed and SSE clients get every event',
    { timeout: 480_000 },
    async () => {
      const JOBS = 2000;
      const began = Date.now();
      const s = await service('restart_mid_run');
      try {
        console.log(`restart: processes up after ${Date.now() - began} ms`);
        const streams = [await recordEvents(s.api, s.key), await recordEvents(s.api, s.key)];
        await s.engine.jobs.enqueue(
          s.vendorId,
          Array.from({ length: JOBS }, () => ({ type: 'noop', options: { ms: 10 } })),
        );
        await waitUntil(
          async () => ((await totals(s.engine)).succeeded ?? 0) >= JOBS / 4,
          120_000,
          'a quarter of the jobs',
        );

        console.log(`restart: a quarter done after ${Date.now() - began} ms`);
        const restartStarted = Date.now();
        await server.restart('fast');
        const restartMs = Date.now() - restartStarted;
        await waitUntil(
          async () => ((await totals(s.engine)).succeeded ?? 0) === JOBS,
          180_000,
          'every job to succeed',
        );
        expect(await totals(s.engine)).toEqual({ succeeded: JOBS });
        console.log(`restart: all done after ${Date.now() - began} ms`);

        const delivered = [];
        for (const stream of streams) delivered.push(await expectEveryEvent(s.engine, s.vendorId, stream, JOBS));
        // Every process lost its LISTEN connection and got it back; the API delivered what it missed.
        await waitUntil(
          () => s.processes.every((p) => reconnections(p).length > 0),
          30_000,
          'every process to reconnect its event bus',
        );
        expect(s.processes.every((p) => p.child.exitCode === null)).toBe(true);
        const caughtUp = reconnections(s.api.process).reduce((n, l) => n + l.caughtUp, 0);
        console.log(
          `restart: server down and up in ${restartMs} ms; API bus caught up ${caughtUp} events; streams got ${delivered.map((d) => `${d.received}/${d.stored}`).join(', ')} (received/stored)`,
        );
        streams.forEach((stream) => stream.close());
      } finally {
        await s.close();
      }
    },
  );

  it(
    'the database stopped for 20 s: the API answers 503 with Retry-After meanwhile and every job succeeds after',
    { timeout: 360_000 },
    async () => {
      const JOBS = 400;
      const OUTAGE_MS = 20_000;
      const s = await service('outage_20s');
      try {
        const stream = await recordEvents(s.api, s.key);
        const { jobs } = await s.engine.jobs.enqueue(
          s.vendorId,
          Array.from({ length: JOBS }, () => ({ type: 'noop', options: { ms: 300 } })),
        );
        await waitUntil(
          async () => ((await totals(s.engine)).succeeded ?? 0) >= 24,
          60_000,
          'the first jobs to succeed',
        );
        const submit = { type: 'noop', input: { url: 'https://example.com/a.jpg' }, options: { ms: 1 } };

        await server.stop('fast');
        const stoppedAt = Date.now();
        const seen: { route: string; status: number; code?: string; retryAfter: string | null }[] = [];
        // The outage lasts the issue's 20 s; the API is probed through it (a read, a submission, readiness).
        while (Date.now() - stoppedAt < OUTAGE_MS) {
          for (const [method, path, json] of [
            ['GET', `/v1/jobs/${jobs[0].id}`],
            ['POST', '/v1/jobs', submit],
            ['GET', '/readyz'],
          ] as const) {
            const res = await s.api.call(method, path, { key: s.key, json });
            seen.push({
              route: `${method} ${path.split('/')[2] ?? path}`,
              status: res.status,
              code: res.body?.code,
              retryAfter: res.headers.get('retry-after'),
            });
            if (path === '/readyz') expect(res.body?.detail).toMatch(/database is unreachable/);
          }
          await new Promise((r) => setTimeout(r, 250));
        }
        await server.start();
        const startedAt = Date.now();
        await waitUntil(
          async () => (await s.api.call('GET', `/v1/jobs/${jobs[0].id}`, { key: s.key })).status === 200,
          60_000,
          'the API to answer again',
        );
        const recoveredMs = Date.now() - startedAt;

        expect(seen.length).toBeGreaterThan(10);
        for (const answer of seen) {
          expect(answer.status, JSON.stringify(answer)).toBe(503);
          expect(answer.retryAfter, JSON.stringify(answer)).toMatch(/^\d+$/);
          expect(answer.code).toBe(answer.route === 'GET /readyz' ? 'not_ready' : 'store_unavailable');
        }
        await waitUntil(
          async () => ((await totals(s.engine)).succeeded ?? 0) === JOBS,
          120_000,
          'every job to succeed',
        );
        expect(await totals(s.engine)).toEqual({ succeeded: JOBS });
        const delivered = await expectEveryEvent(s.engine, s.vendorId, stream, JOBS);
        expect(s.processes.every((p) => p.child.exitCode === null)).toBe(true);
        const reran = await s.engine.store.db.selectFrom('jobs').select('id').where('attempts', '>=', 2).execute();
        console.log(
          `outage: ${seen.length} answers in ${OUTAGE_MS} ms, all 503 with Retry-After; API answered again ${recoveredMs} ms after the server started; ${reran.length} jobs ran twice; stream got ${delivered.received}/${delivered.stored}`,
        );
        stream.close();
      } finally {
        await s.close();
      }
    },
  );
});
