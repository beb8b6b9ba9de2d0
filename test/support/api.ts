import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import sharp from 'sharp';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect } from 'vitest';
import { buildServer } from '../../src/api/index.js';
import { loadConfig, type Config } from '../../src/config.js';
import { openServices, startWorker, type Services } from '../../src/services.js';
import { dropDatabase, type StoreTarget } from './stores.js';
import { TEST_MODELS_DIR } from './models.js';

/**
 * A real pixq API on loopback for HTTP tests: services opened on a fresh store, buildServer, app.listen on
 * 127.0.0.1 port 0. Requests go through fetch (undici) over a real socket, so routing, hooks, body parsing,
 * headers and streaming are exercised exactly as a client sees them, not through inject.
 */
export const ADMIN_KEY = 'test-admin-key-0123456789';

export interface ApiHarness {
  services: Services;
  config: Config;
  app: FastifyInstance;
  /** http://127.0.0.1:<port> */
  base: string;
  dataDir: string;
  databaseUrl?: string;
  /** Warnings and errors the API logged (every 500 is logged at error level). */
  logged: Record<string, unknown>[];
  call(method: string, path: string, opts?: CallOptions): Promise<Answer>;
  /** Creates a vendor through the admin API and returns it with its first key. */
  vendor(
    name?: string,
    settings?: Record<string, unknown>,
  ): Promise<{ id: string; key: string; vendor: Record<string, unknown> }>;
  /** Starts a worker (and the housekeeping timers) in this process; stopped by close(). */
  startWorker(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface CallOptions {
  key?: string;
  json?: unknown;
  form?: FormData;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  contentType: string;
  /** Parsed JSON for JSON and problem+json bodies; otherwise undefined. */
  body: any;
  raw: Buffer;
}

/** Environment every API test starts from; tests override single variables. */
export function testEnv(location: { dataDir: string; databaseUrl?: string }, env: Record<string, string> = {}) {
  return {
    PIXQ_DATA_DIR: location.dataDir,
    PIXQ_MODELS_DIR: TEST_MODELS_DIR,
    ...(location.databaseUrl && { DATABASE_URL: location.databaseUrl }),
    PIXQ_ADMIN_KEY: ADMIN_KEY,
    PIXQ_ENABLE_NOOP: '1',
    PIXQ_LOG_LEVEL: 'warn',
    PIXQ_POLL_MS: '25',
    PIXQ_BACKOFF_MS: '0',
    // Generous budgets by default: only the rate-limit tests want to hit them.
    PIXQ_RATE_REQUESTS: '100000/1m',
    PIXQ_RATE_IMAGE: '100000/1m',
    PIXQ_RATE_BULK: '100000/1m',
    PIXQ_RATE_REMOVE_BACKGROUND: '100000/1m',
    PIXQ_RATE_ANONYMOUS: '100000/1m',
    PIXQ_RATE_RENDER: '100000/1m',
    PIXQ_SSE_HEARTBEAT_MS: '200',
    // A worker stopped at the end of a test should not wait 25 s for a long noop job.
    PIXQ_SHUTDOWN_GRACE_MS: '500',
    ...env,
  };
}

let vendorCounter = 0;

/**
 * Opens an API on `location` (a fresh store unless given). `shareStore` lets a second instance open the same
 * store, as a second API process would; only the instance that created the store drops it.
 */
export async function startApi(
  target: StoreTarget,
  env: Record<string, string> = {},
  shareStore?: { dataDir: string; databaseUrl?: string },
): Promise<ApiHarness> {
  const location = shareStore ?? (await target.fresh());
  const config = loadConfig(testEnv(location, env));
  const logged: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean))
        logged.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const services = await openServices(config, pino({ level: 'warn' }, sink));
  const app = await buildServer(services);
  // A free port unless the test names one (PORT), e.g. to restart a server where its clients expect it.
  await app.listen({ host: '127.0.0.1', port: env.PORT ? config.port : 0 });
  const { port } = app.server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  const stops: (() => Promise<void>)[] = [];

  const call = async (method: string, path: string, opts: CallOptions = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body: RequestInit['body'];
    if (opts.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.form) body = opts.form;
    else if (opts.body !== undefined) body = opts.body;
    // A request the server never answers is a bug: fail it clearly instead of waiting out the test.
    const res = await fetch(base + path, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    });
    return answer(res);
  };

  const harness: ApiHarness = {
    services,
    config,
    app,
    base,
    dataDir: location.dataDir,
    databaseUrl: location.databaseUrl,
    logged,
    call,
    async vendor(name = `v${++vendorCounter}-${Date.now().toString(36)}`, settings = {}) {
      const res = await call('POST', '/v1/vendors', { key: ADMIN_KEY, json: { name, ...settings } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return { id: res.body.vendor.id, key: res.body.apiKey, vendor: res.body.vendor };
    },
    async startWorker() {
      const stop = await startWorker(services);
      const once = async () => {
        const i = stops.indexOf(once);
        if (i < 0) return;
        stops.splice(i, 1);
        await stop();
      };
      stops.push(once);
      return once;
    },
    async close() {
      for (const stop of stops.splice(0)) await stop();
      // An SSE stream a failed test left open would otherwise keep close() waiting.
      app.server.closeAllConnections();
      await app.close();
      await services.close();
      if (!shareStore) await dropDatabase(location.databaseUrl);
    },
  };
  return harness;
}

/** One API per describe block (started before its first test, closed after its last): tests use fresh vendors. */
export function useApi(target: StoreTarget, env: Record<string, string> = {}): () => ApiHarness {
  let api: ApiHarness | undefined;
  beforeAll(async () => {
    api = await startApi(target, env);
  });
  afterAll(async () => {
    await api?.close();
  });
  return () => api!;
}

export async function answer(res: Response): Promise<Answer> {
  const raw = Buffer.from(await res.arrayBuffer());
  const contentType = res.headers.get('content-type') ?? '';
  let body: unknown;
  if (/json/.test(contentType) && raw.length > 0) body = JSON.parse(raw.toString('utf8'));
  return { status: res.status, headers: res.headers, contentType, body, raw };
}

/** Asserts an RFC 9457 problem answer with the given status and stable code. */
export function expectProblem(res: Answer, status: number, code: string) {
  expect({ status: res.status, code: res.body?.code }, res.raw.toString('utf8').slice(0, 500)).toEqual({
    status,
    code,
  });
  expect(res.contentType).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({
    status,
    code,
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
  });
}

/** A multipart form with each buffer as an `image` file, plus text fields. */
export function imageForm(
  files: { bytes: Buffer; name?: string; type?: string }[],
  fields: Record<string, string> = {},
) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const f of files)
    form.append('image', new Blob([f.bytes], { type: f.type ?? 'image/jpeg' }), f.name ?? 'photo.jpg');
  return form;
}

/** A small real JPEG (a gradient, so it compresses like a photo rather than a flat colour). */
export async function jpeg(width = 64, height = 48): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = (x * 255) / width;
      raw[i + 1] = (y * 255) / height;
      raw[i + 2] = 128;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 80 })
    .toBuffer();
}

export async function png(width = 32, height = 32): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 1 } } })
    .png()
    .toBuffer();
}

/** Polls a job through the API until it reaches `state` (or any finished state, if it never will). */
export async function waitForJob(api: ApiHarness, key: string, id: string, states: string[], timeoutMs = 20_000) {
  const start = Date.now();
  for (;;) {
    const res = await api.call('GET', `/v1/jobs/${id}`, { key });
    expect(res.status).toBe(200);
    if (states.includes(res.body.state)) return res.body;
    if (Date.now() - start > timeoutMs) throw new Error(`job ${id} is ${res.body.state}, expected ${states.join('/')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Fixed windows reset on the hour; a test that straddles the reset would see a fresh budget mid-way. */
export async function awayFromWindowEdge(windowMs = 3_600_000, marginMs = 10_000) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

/**
 * A static image server on a loopback address, for URL inputs; `redirectTo` answers every path with a 302,
 * `failFirst` answers each path's first request with a 500 (a failed attempt the processor retries).
 */
export async function imageServer(
  bytes: Buffer,
  opts: { host?: string; redirectTo?: string; failFirst?: boolean } = {},
) {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    const first = !hits.includes(req.url ?? '');
    hits.push(req.url ?? '');
    if (opts.failFirst && first) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('try again');
      return;
    }
    if (opts.redirectTo) {
      res.writeHead(302, { location: opts.redirectTo }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': bytes.length }).end(bytes);
  });
  server.keepAliveTimeout = 60_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    hits,
    port,
    url: (path = '/photo.jpg') => `http://${host}:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One Server-Sent Events connection, parsed as it streams. */
export interface SseStream {
  status: number;
  headers: Headers;
  events: { id?: string; event?: string; data: any }[];
  /** Comment lines seen (heartbeats). */
  comments: string[];
  waitFor(
    pred: (e: { id?: string; event?: string; data: any }) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<{ id?: string; data: any }>;
  close(): void;
  /** Resolves when the server ends the stream (or it breaks); not when close() aborts it. */
  ended: Promise<void>;
  body?: any;
}

export async function openSse(
  api: { base: string },
  path: string,
  key: string,
  headers: Record<string, string> = {},
): Promise<SseStream> {
  const controller = new AbortController();
  const res = await fetch(api.base + path, {
    headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  let markEnded!: () => void;
  const stream: SseStream = {
    ended: new Promise<void>((resolve) => (markEnded = resolve)),
    status: res.status,
    headers: res.headers,
    events: [],
    comments: [],
    async waitFor(pred, timeoutMs = 15_000, what = 'an event') {
      const start = Date.now();
      for (;;) {
        const hit = stream.events.find(pred);
        if (hit) return hit;
        if (Date.now() - start > timeoutMs) {
          throw new Error(
            `timed out waiting for ${what}; got ${JSON.stringify(stream.events.map((e) => [e.id, e.data?.state]))}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => controller.abort(),
  };
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    stream.body = await res.json().catch(() => undefined);
    return stream;
  }
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: { id?: string; event?: string; data: any } = { data: undefined };
          let hasData = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) {
              event.data = JSON.parse(line.slice(6));
              hasData = true;
            }
          }
          if (hasData) stream.events.push(event);
        }
      }
    } catch {
      // aborted by close(), or the connection broke
      if (controller.signal.aborted) return;
    }
    markEnded();
  })();
  return stream;
}

// Importing the API's schemas registers the string formats they use with TypeBox.
/** Asserts `value` matches a response schema of the API, listing the mismatches when it does not. */
export function expectShape(schema: TSchema, value: unknown) {
  const errors = [...Value.Errors(schema, value)].slice(0, 5).map((e) => `${e.path}: ${e.message}`);
  expect(errors).toEqual([]);
}
