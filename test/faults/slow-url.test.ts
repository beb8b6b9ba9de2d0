import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageServer, jpeg } from '../support/api.js';
import { stopAll, waitUntil } from '../support/processes.js';
import { tempDir } from '../support/stores.js';
import { createVendor, GENEROUS_RATES, spawnApi, type ApiProcess } from './harness.js';

/**
 * URL sources that never finish: one trickles a byte a second, one sends its headers and a few bytes and
 * then nothing. With one transform slot, the downloads must time out with `url_fetch_failed`, the connections
 * must be closed, and the slot must then run the next job.
 */
describe('faults: URL sources that trickle or never end', () => {
  let api: ApiProcess;
  let server: http.Server;
  let base: string;
  const open = new Set<string>();
  const closed: string[] = [];

  beforeAll(async () => {
    const photo = await jpeg(200, 150);
    server = http.createServer((req, res) => {
      const name = req.url ?? '';
      open.add(name);
      req.socket.on('close', () => closed.push(name));
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.length });
      if (name === '/trickle.jpg') {
        let sent = 0;
        const timer = setInterval(() => res.write(photo.subarray(sent, ++sent)), 1000);
        req.socket.on('close', () => clearInterval(timer));
      } else {
        res.write(photo.subarray(0, 100)); // and never the rest
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    api = await spawnApi(
      {
        PIXQ_DATA_DIR: tempDir(),
        PIXQ_URL_ALLOWLIST: '127.0.0.1',
        PIXQ_URL_TIMEOUT_MS: '1500',
        PIXQ_WORKER_CONCURRENCY: 'transform=1',
        PIXQ_POLL_MS: '100',
        PIXQ_LOG_LEVEL: 'warn',
        ...GENEROUS_RATES,
      },
      'start',
    );
  }, 240_000); // starting a process from source on a loaded machine
  afterAll(async () => {
    await stopAll([api.process]);
    server.closeAllConnections();
    server.close();
  });

  it('times out with url_fetch_failed, closes the connection and frees the slot', { timeout: 120_000 }, async () => {
    const { key } = await createVendor(api, 'slow-url');
    const submit = async (url: string) => {
      const res = await api.call('POST', '/v1/jobs', {
        key,
        json: { type: 'transform', input: { url }, options: { resize: { width: 50 } }, maxAttempts: 1 },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body.id as string;
    };
    const job = (id: string) => api.call('GET', `/v1/jobs/${id}`, { key }).then((r) => r.body);
    const finished = (id: string) =>
      waitUntil(async () => ['succeeded', 'failed'].includes((await job(id)).state), 60_000, `job ${id} to finish`);

    const slow = [await submit(`${base}/trickle.jpg`), await submit(`${base}/hang.jpg`)];
    for (const id of slow) await finished(id);
    for (const id of slow) {
      const body = await job(id);
      expect({ state: body.state, code: body.error?.code }).toEqual({ state: 'failed', code: 'url_fetch_failed' });
      expect(body.error.message).toMatch(/within 1500 ms/);
    }
    // The worker hung up on both sources, and its only slot runs the next job.
    await waitUntil(
      () => closed.includes('/trickle.jpg') && closed.includes('/hang.jpg'),
      30_000,
      'both downloads to be closed',
    );
    const good = await imageServer(await jpeg(120, 90));
    try {
      const next = await submit(good.url());
      await finished(next);
      expect((await job(next)).state).toBe('succeeded');
    } finally {
      await good.close();
    }
    expect([...open].sort()).toEqual(['/hang.jpg', '/trickle.jpg']);
  });
});
