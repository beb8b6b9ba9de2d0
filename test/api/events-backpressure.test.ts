import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { openSse, useApi, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';

/**
 * An event stream whose client stops reading, over a real socket: the server writes only as fast as the client
 * reads (it waits for 'drain' while replaying), and a live stream that falls too far behind is ended with a
 * comment, after which the client resumes by Last-Event-ID and misses nothing.
 */
const MAX_UNSENT = 64 * 1024;

describeEachStore('event stream backpressure', (target) => {
  const api = useApi(target, { PIXQ_SSE_MAX_UNSENT_BYTES: String(MAX_UNSENT) });
  const cleanups: (() => void)[] = [];
  afterEach(() => cleanups.splice(0).forEach((undo) => undo()));

  it('replays a long history only as fast as the client reads it', { timeout: 120_000 }, async () => {
    const { id: vendorId, key } = await api().vendor();
    // 20,000 stored events, several MB: more than the kernel's socket buffers take from a client that reads nothing.
    const total = 20_000;
    await enqueueNoops(api(), vendorId, total);
    const watched = watchEventStreams(api(), cleanups);
    const client = rawSseClient(api(), key, { 'last-event-id': '1' });
    cleanups.push(() => client.socket.destroy());
    await waitUntil(() => watched.res?.writableNeedDrain === true, 60_000, 'the server to fill the socket');

    client.socket.resume();
    await waitUntil(() => client.eventIds().length >= total - 1, 60_000, 'the whole replay');
    expect(client.eventIds()).toEqual([...new Set(client.eventIds())].sort((a, b) => a - b));
    // Waiting for drain, the server never held more than about one socket buffer's worth beyond the kernel's.
    expect(watched.maxUnsent).toBeLessThan(MAX_UNSENT);
  });

  it('ends a live stream that falls too far behind with a comment; the client resumes by Last-Event-ID', async () => {
    const { id: vendorId, key } = await api().vendor();
    const watched = watchEventStreams(api(), cleanups);
    const client = rawSseClient(api(), key, {});
    cleanups.push(() => client.socket.destroy());
    await waitUntil(() => watched.res !== undefined && watched.wrote > 0, 10_000, 'the stream to open');

    let published = 0;
    for (let batch = 0; batch < 100 && !watched.res!.writableEnded; batch++) {
      await enqueueNoops(api(), vendorId, 500);
      published += 500;
    }
    expect(watched.res!.writableEnded).toBe(true);
    expect(watched.maxUnsent).toBeLessThan(MAX_UNSENT + 4096); // the limit, and at most the event that crossed it

    client.socket.resume();
    await waitUntil(client.ended, 30_000, 'the server to end the stream');
    expect(client.text()).toMatch(/: too far behind; reconnect with Last-Event-ID\n\n$/);
    const got = client.eventIds();
    expect(got.length).toBeLessThan(published);

    const resumed = await openSse(api(), '/v1/events', key, { 'last-event-id': String(got.at(-1)) });
    try {
      await waitUntil(() => got.length + resumed.events.length >= published, 60_000, 'the rest of the events');
      const all = [...got, ...resumed.events.map((e) => Number(e.id))];
      expect(new Set(all).size).toBe(published);
    } finally {
      resumed.close();
    }
  });
});

async function enqueueNoops(api: ApiHarness, vendorId: string, n: number) {
  for (let done = 0; done < n; done += 1000) {
    const count = Math.min(1000, n - done);
    await api.services.engine.jobs.enqueue(
      vendorId,
      Array.from({ length: count }, () => ({ type: 'noop', options: { ms: 0 } })),
    );
  }
}

/** Follows the server's side of the next event stream: how much it has written and held unsent at most. */
function watchEventStreams(api: ApiHarness, cleanups: (() => void)[]) {
  const watched = { res: undefined as ServerResponse | undefined, maxUnsent: 0, wrote: 0 };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/v1/events') || watched.res) return;
    watched.res = res;
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((...args: unknown[]) => {
      const ok = write(...args);
      watched.wrote++;
      watched.maxUnsent = Math.max(watched.maxUnsent, res.writableLength);
      return ok;
    }) as typeof res.write;
  };
  api.app.server.on('request', onRequest);
  cleanups.push(() => api.app.server.off('request', onRequest));
  return watched;
}

/** GET /v1/events on a bare socket that reads nothing until the test resumes it. */
function rawSseClient(api: ApiHarness, key: string, headers: Record<string, string>) {
  const { hostname, port } = new URL(api.base);
  const socket = net.connect(Number(port), hostname);
  socket.pause();
  const lines = [
    'GET /v1/events HTTP/1.1',
    `host: ${hostname}:${port}`,
    `authorization: Bearer ${key}`,
    'accept: text/event-stream',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    '',
    '',
  ];
  socket.write(lines.join('\r\n'));
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // The response ends with its last chunk (the connection itself may be kept alive).
  const ended = () => /\r\n0\r\n\r\n$/.test(Buffer.concat(chunks).toString('latin1'));
  const text = () => dechunk(Buffer.concat(chunks).toString('utf8'));
  const eventIds = () => [...text().matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  return { socket, ended, text, eventIds };
}

/** The body of a chunked HTTP/1.1 response (what arrived of it), without the head and the chunk sizes. */
function dechunk(raw: string): string {
  let rest = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  let body = '';
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) return body;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return body;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}
