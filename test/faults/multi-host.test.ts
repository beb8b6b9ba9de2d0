import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEngine, type Engine } from '../../src/engine/index.js';
import {
  ADMIN_KEY,
  answer,
  awayFromWindowEdge,
  imageForm,
  jpeg,
  type Answer,
  type CallOptions,
} from '../support/api.js';
import { countJobs, DEFAULT_OPTIONS } from '../support/engine.js';
import { peakRunning, spawnPixq, stopAll, waitUntil, workerReady, type PixqProcess } from '../support/processes.js';
import { startS3Server, type S3Server } from '../support/s3.js';
import { dropDatabase, postgresTarget, tempDir } from '../support/stores.js';

/**
 * Several hosts, as far as one machine can show it: two `pixq api` and three `pixq worker` processes, each with
 * its own data directory, sharing only PostgreSQL, an S3 bucket (s3rver on loopback) and PIXQ_SIGNING_SECRET.
 */
const pgUrl = process.env.PIXQ_TEST_DATABASE_URL;
if (!pgUrl) console.warn('PIXQ_TEST_DATABASE_URL is not set: skipping the multi-host test (it needs PostgreSQL)');

interface Api {
  process: PixqProcess;
  base: string;
  call(method: string, route: string, opts?: CallOptions): Promise<Answer>;
}

async function startApiProcess(env: Record<string, string | undefined>, dataDir: string): Promise<Api> {
  const process = spawnPixq(['api'], { ...env, PIXQ_DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: '0' });
  let base = '';
  await waitUntil(
    () => {
      const line = process.logs.find((l) => l.msg === 'API listening');
      base = String(line?.address ?? '');
      return base !== '';
    },
    90_000,
    `API ${process.pid} to listen`,
  );
  const call = async (method: string, route: string, opts: CallOptions = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    if (opts.json !== undefined) headers['content-type'] = 'application/json';
    const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.form;
    return answer(
      await fetch(base + route, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(15_000) }),
    );
  };
  return { process, base, call };
}

describe.skipIf(!pgUrl)('two API and three worker processes on PostgreSQL and S3', () => {
  let s3: S3Server;
  let databaseUrl: string;
  let engine: Engine;
  let apis: Api[];
  let workers: PixqProcess[];
  /** One per process: nothing in them is shared. */
  const dataDirs = Array.from({ length: 5 }, () => tempDir());

  beforeAll(async () => {
    s3 = await startS3Server();
    databaseUrl = (await postgresTarget.fresh()).databaseUrl!;
    // Migrated once before the processes start, so they do not all migrate at once.
    engine = await openEngine({ databaseUrl, dataDir: tempDir() }, DEFAULT_OPTIONS);
    const env = {
      ...s3.env,
      DATABASE_URL: databaseUrl,
      PIXQ_SIGNING_SECRET: randomBytes(24).toString('hex'),
      PIXQ_ADMIN_KEY: ADMIN_KEY,
      PIXQ_ENABLE_NOOP: '1',
      PIXQ_LOG_LEVEL: 'info',
      PIXQ_POLL_MS: '50',
      PIXQ_SHUTDOWN_GRACE_MS: '2000',
      PIXQ_WORKER_CONCURRENCY: 'noop=4,transform=1',
      PIXQ_RATE_REQUESTS: '100000/1m',
      PIXQ_RATE_IMAGE: '100000/1m',
      PIXQ_RATE_BULK: '100000/1m',
      PIXQ_RATE_ANONYMOUS: '100000/1m',
    };
    apis = await Promise.all([startApiProcess(env, dataDirs[0]), startApiProcess(env, dataDirs[1])]);
    workers = dataDirs.slice(2).map((dir) => spawnPixq(['worker'], { ...env, PIXQ_DATA_DIR: dir }));
    await Promise.all(workers.map((w) => workerReady(w))); // afterAll stops them, started or not
  }, 240_000);

  afterAll(async () => {
    await stopAll([...(apis ?? []).map((a) => a.process), ...(workers ?? [])]);
    await engine?.close();
    await dropDatabase(databaseUrl);
    await s3?.stop();
  }, 60_000);

  async function vendor(settings: Record<string, unknown> = {}) {
    const res = await apis[0].call('POST', '/v1/vendors', {
      key: ADMIN_KEY,
      json: { name: `v${randomBytes(5).toString('hex')}`, ...settings },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return { id: res.body.vendor.id as string, key: res.body.apiKey as string };
  }

  async function waitForSucceeded(vendorId: string, count: number) {
    await waitUntil(
      async () => (await countJobs(engine, vendorId, 'succeeded')) >= count,
      90_000,
      `${count} jobs of ${vendorId} to succeed`,
    );
  }

  function noops(n: number, ms: number) {
    return Array.from({ length: n }, () => ({ type: 'noop', options: { ms } }));
  }

  it('a job submitted through one API is downloadable through the other', { timeout: 60_000 }, async () => {
    const { key } = await vendor();
    const submitted = await apis[0].call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: await jpeg(90, 60) }], {
        type: 'transform',
        options: '{"resize":{"width":45},"format":"png"}',
      }),
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    let job: Record<string, any> = {};
    await waitUntil(
      async () => {
        job = (await apis[1].call('GET', `/v1/jobs/${submitted.body.id}`, { key })).body;
        return ['succeeded', 'failed'].includes(job.state);
      },
      45_000,
      'the job to finish',
    );
    expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
    // The link one API signed is honoured by the other (same secret), and leads to the bucket.
    const fromFirst = (await apis[0].call('GET', `/v1/jobs/${submitted.body.id}`, { key })).body.outputs[0]
      .url as string;
    for (const url of [fromFirst, job.outputs[0].url as string]) {
      const download = await fetch(apis[1].base + url);
      expect(download.status).toBe(200);
      expect(download.headers.get('content-type')).toBe('image/png');
      expect(await sharp(Buffer.from(await download.arrayBuffer())).metadata()).toMatchObject({
        width: 45,
        height: 30,
      });
    }
    const viaOther = await apis[1].call('GET', `/v1/jobs/${submitted.body.id}/output`, { key });
    expect(viaOther.status).toBe(200);
    // Nothing but the database and the bucket is shared: no process keeps a blob in its own directory.
    const outputKey = /^\/v1\/blobs\/([0-9a-f]{64})\?/.exec(fromFirst)![1];
    expect(await s3.keys()).toContain(outputKey);
    for (const dir of dataDirs) {
      const entries = await readdir(path.join(dir, 'blobs'), { recursive: true, withFileTypes: true }).catch(() => []);
      expect(entries.filter((e) => e.isFile()).map((e) => e.name)).toEqual([]);
    }
  });

  it(
    'a vendor running cap of 2 holds across the three workers while another vendor uses the rest',
    { timeout: 120_000 },
    async () => {
      const capped = await vendor({ maxRunning: 2 });
      const free = await vendor();
      expect(
        (await apis[0].call('POST', '/v1/jobs/bulk', { key: capped.key, json: { jobs: noops(40, 60) } })).status,
      ).toBe(202);
      expect(
        (await apis[1].call('POST', '/v1/jobs/bulk', { key: free.key, json: { jobs: noops(60, 60) } })).status,
      ).toBe(202);
      const succeeded = (vendorId: string) => countJobs(engine, vendorId, 'succeeded');
      const { peaks, samples } = await peakRunning(
        engine,
        [capped.id, free.id],
        async () => (await succeeded(capped.id)) + (await succeeded(free.id)) === 100,
      );
      expect(samples).toBeGreaterThan(10);
      expect(peaks[0]).toBe(2); // reached, never exceeded
      expect(peaks[1]).toBeGreaterThan(2); // the other vendor used the free slots meanwhile
    },
  );

  it(
    'a vendor arriving late with 10 jobs is served alongside a bulk of 100, not behind it',
    { timeout: 120_000 },
    async () => {
      const bulk = await vendor();
      const late = await vendor();
      expect(
        (await apis[0].call('POST', '/v1/jobs/bulk', { key: bulk.key, json: { jobs: noops(100, 40) } })).status,
      ).toBe(202);
      // The bulk's work has begun on the workers when the late vendor submits, through the other API.
      await waitForSucceeded(bulk.id, 5);
      expect(
        (await apis[1].call('POST', '/v1/jobs/bulk', { key: late.key, json: { jobs: noops(10, 40) } })).status,
      ).toBe(202);
      await waitForSucceeded(late.id, 10);
      await waitForSucceeded(bulk.id, 100);
      const jobs = await engine.store.db
        .selectFrom('jobs')
        .select(['vendor_id', 'created_at', 'started_at'])
        .where('vendor_id', 'in', [bulk.id, late.id])
        .execute();
      const lateJobs = jobs.filter((j) => j.vendor_id === late.id);
      const arrived = Math.min(...lateJobs.map((j) => j.created_at));
      const lastLateStart = Math.max(...lateJobs.map((j) => j.started_at!));
      const bulkStartedMeanwhile = jobs.filter(
        (j) => j.vendor_id === bulk.id && j.started_at! > arrived && j.started_at! <= lastLateStart,
      ).length;
      // First come, first served would start most of the bulk's remaining ~90 first; fair claims alternate.
      expect(bulkStartedMeanwhile).toBeLessThan(40);
    },
  );

  it("a vendor's image budget is one budget across both APIs", { timeout: 60_000 }, async () => {
    await awayFromWindowEdge();
    const { key } = await vendor({ rateLimits: { image: { limit: 4, windowMs: 3_600_000 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await apis[i % 2].call('POST', '/v1/jobs', { key, json: { type: 'noop' } })).status);
    expect(statuses).toEqual([202, 202, 202, 202, 429, 429]);
  });
});
