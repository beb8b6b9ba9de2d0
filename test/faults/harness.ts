import { freePort } from '../support/private-pg.js';
import { spawnPixq, waitUntil, type PixqProcess } from '../support/processes.js';

/**
 * What the fault tests share: a real `pixq api` process on a free loopback port, and an SSE client that
 * records every event a stream delivers (and whether the stream ever ended).
 */
export const ADMIN_KEY = 'fault-test-admin-key-0123456789';

export interface ApiProcess {
  process: PixqProcess;
  base: string;
  call(
    method: string,
    path: string,
    opts?: { key?: string; json?: unknown; body?: string | FormData; headers?: Record<string, string> },
  ): Promise<Reply>;
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

/** Starts `pixq api` (or `pixq start`: API and workers) and waits until `/readyz` answers 200. */
export async function spawnApi(
  env: Record<string, string | undefined>,
  command: 'api' | 'start' = 'api',
): Promise<ApiProcess> {
  const port = await freePort();
  const process = spawnPixq([command], { PORT: String(port), HOST: '127.0.0.1', PIXQ_ADMIN_KEY: ADMIN_KEY, ...env });
  const base = `http://127.0.0.1:${port}`;
  const call: ApiProcess['call'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body = opts.body;
    if (opts.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: res.status, headers: res.headers, body: parsed };
  };
  const ready = async () => (await call('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200;
  try {
    await waitUntil(ready, 180_000, `pixq api on port ${port} to be ready`);
  } catch (err) {
    process.child.kill('SIGKILL');
    throw err;
  }
  return { process, base, call };
}

/** Creates a vendor through the admin API; returns its id and first key. */
export async function createVendor(api: ApiProcess, name: string) {
  const res = await api.call('POST', '/v1/vendors', { key: ADMIN_KEY, json: { name } });
  if (res.status !== 201) throw new Error(`creating a vendor answered ${res.status}: ${JSON.stringify(res.body)}`);
  return { id: res.body.vendor.id as string, key: res.body.apiKey as string };
}

/** Budgets no fault test should run into. */
export const GENEROUS_RATES = Object.fromEntries(
  ['PIXQ_RATE_REQUESTS', 'PIXQ_RATE_ANONYMOUS', 'PIXQ_RATE_IMAGE', 'PIXQ_RATE_BULK'].map((name) => [
    name,
    '1000000/1m',
  ]),
);

export interface SseRecorder {
  /** Every event id received, in arrival order (repeats included). */
  ids: number[];
  events: { id: number; jobId: string; state: string; kind: string }[];
  /** Set when the stream ended or failed: the fault tests expect streams to survive outages. */
  ended: string | undefined;
  close(): void;
}

/** Opens `GET /v1/events` for a vendor and records what arrives until `close()`. */
export async function recordEvents(api: ApiProcess, key: string): Promise<SseRecorder> {
  const controller = new AbortController();
  const res = await fetch(`${api.base}/v1/events`, {
    headers: { authorization: `Bearer ${key}` },
    signal: controller.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`event stream answered ${res.status}`);
  const recorder: SseRecorder = { ids: [], events: [], ended: undefined, close: () => controller.abort() };
  const decoder = new TextDecoder();
  let pending = '';
  void (async () => {
    try {
      for await (const chunk of res.body!) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true });
        let end;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block);
          if (!data) continue;
          const event = JSON.parse(data[1]) as SseRecorder['events'][number];
          recorder.ids.push(event.id);
          recorder.events.push(event);
        }
      }
      recorder.ended ??= 'the server ended the stream';
    } catch (err) {
      if (!controller.signal.aborted) recorder.ended = `the stream failed: ${(err as Error).message}`;
    }
  })();
  return recorder;
}
