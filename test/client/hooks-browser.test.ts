import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { hasChromium, launchChromium } from '../support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jpeg, startApi, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { sqliteTarget } from '../support/stores.js';

/** A static server for the bundled page, on its own port: another origin than the API, as in production. */
async function pageServer(script: string) {
  const html =
    '<!doctype html><html><body><div id="root"></div><script type="module" src="/page.js"></script></body></html>';
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/page.js')) res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

const streams = (api: ApiHarness) =>
  (api.services.engine.bus as unknown as { emitter: { listenerCount(e: string): number } }).emitter.listenerCount(
    'event',
  );

describe.skipIf(!hasChromium)('React hooks in Chromium against a real server', () => {
  let browser: Browser;
  let api: ApiHarness;
  let page: Awaited<ReturnType<typeof pageServer>>;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [path.join(import.meta.dirname, 'browser/hooks-page.tsx')],
      bundle: true,
      format: 'esm',
      jsx: 'automatic',
      write: false,
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'silent',
    });
    page = await pageServer(bundle.outputFiles[0].text);
    api = await startApi(sqliteTarget, { PIXQ_CORS_ORIGINS: page.origin });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    page?.close();
  });

  it('useJob and useBatch follow live over EventSource with a token, and close the stream on unmount', async () => {
    const { key } = await api.vendor();
    const call = (p: string, json: unknown) => api.call('POST', p, { key, json });
    const photo = await jpeg(64, 48);
    const form = new FormData();
    form.append('type', 'transform');
    form.append('options', JSON.stringify({ format: 'png' }));
    form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'p.jpg');
    const job = (await api.call('POST', '/v1/jobs', { key, form })).body;
    const batch = (await call('/v1/jobs/bulk', { jobs: [{ type: 'noop' }, { type: 'noop', options: { ms: 30 } }] }))
      .body;

    const tab = await browser.newPage();
    const eventUrls: string[] = [];
    tab.on('request', (r) => new URL(r.url()).pathname === '/v1/events' && eventUrls.push(r.url()));
    const before = streams(api);
    await tab.goto(`${page.origin}/?${new URLSearchParams({ api: api.base, key, job: job.id, batch: batch.batchId })}`);
    const read = async (id: string) => JSON.parse((await tab.textContent(`#${id}`)) ?? '{}');
    await waitUntil(async () => (await read('job')).state === 'queued', 20_000, 'the page to show the queued job');
    // Both hooks hold a live stream before any work starts, so what follows reaches them as events.
    await waitUntil(() => streams(api) >= before + 2, 20_000, 'both hooks to open their streams');

    const stopWorker = await api.startWorker();
    try {
      await waitUntil(
        async () => (await read('job')).isComplete && (await read('batch')).isComplete,
        30_000,
        'both hooks to complete',
      );
    } finally {
      await stopWorker();
    }
    expect(await read('job')).toEqual({
      state: 'succeeded',
      progress: { stage: null, percentage: 100, message: null },
      isComplete: true,
      error: null,
      outputs: 1,
    });
    expect(await read('batch')).toEqual({
      counts: { queued: 0, delayed: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 },
      total: 2,
      percent: 100,
      isComplete: true,
    });
    expect(await tab.evaluate(() => (globalThis as unknown as { seenStates: string[] }).seenStates)).toEqual([
      'queued',
      'running',
      'succeeded',
    ]);
    // EventSource cannot send the key: the SDK fetched event tokens and put them in the URL.
    expect(eventUrls.length).toBeGreaterThanOrEqual(2);
    expect(eventUrls.every((u) => new URL(u).searchParams.get('token')?.startsWith('pxe1.'))).toBe(true);

    await tab.click('#unmount');
    await waitUntil(() => streams(api) === before, 20_000, 'the hooks to close their streams on unmount');
    await tab.close();
  });
});
