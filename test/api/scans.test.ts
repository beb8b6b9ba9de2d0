import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_KEY, expectProblem, imageForm, imageServer, useApi } from '../support/api.js';
import { cleanLabel, EAN_13 } from '../support/labels.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';

describeEachStore('scanner compat routes (/api/scans, /api/queue/stats)', (target) => {
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1' });
  let label: Buffer;
  let images: Awaited<ReturnType<typeof imageServer>>;

  beforeAll(async () => {
    label = (await cleanLabel()).png;
    images = await imageServer(label);
  });
  afterAll(async () => {
    await images.close();
  });

  const status = (key: string, scanId: string) => api().call('GET', `/api/scans/${scanId}/status`, { key });
  const stats = (key: string) => api().call('GET', '/api/queue/stats', { key });

  it('queues a scan from imageUrl, reports it waiting, then completed with the analysis; stats count it', async () => {
    const { key } = await api().vendor();
    const submitted = await api().call('POST', '/api/scans', {
      key,
      json: {
        scanId: 'scan-1',
        userId: 'user-7',
        imageUrl: images.url('/label.png'),
        category: 'food',
        marketplaces: ['amazon'],
        productName: 'Oat biscuits',
      },
    });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toEqual({ scanId: 'scan-1', status: 'QUEUED' });

    const waiting = await status(key, 'scan-1');
    expect(waiting.status).toBe(200);
    expect(waiting.body).toEqual({
      scanId: 'scan-1',
      state: 'waiting',
      progress: { stage: null, percentage: 0, message: null },
    });
    expect((await stats(key)).body).toEqual({ waiting: 1, active: 0, completed: 0, failed: 0 });

    const stop = await api().startWorker();
    try {
      // The worker gave the type the default global rate limit the processor declares (provider calls per minute).
      const types = await api().call('GET', '/v1/job-types', { key: ADMIN_KEY });
      expect(types.body.types).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'label-analysis', rateLimit: { limit: 50, windowMs: 60_000 } }),
        ]),
      );
      let done: any;
      await waitUntil(
        async () => {
          done = (await status(key, 'scan-1')).body;
          return done.state === 'completed' || done.state === 'failed';
        },
        120_000,
        'the scan to finish',
      );
      expect(Object.keys(done).sort()).toEqual(['progress', 'result', 'scanId', 'state']);
      expect(done).toMatchObject({
        scanId: 'scan-1',
        state: 'completed',
        progress: { stage: null, percentage: 100, message: null },
      });
      expect(done.result.barcodes).toEqual(
        expect.arrayContaining([expect.objectContaining({ format: 'EAN-13', value: EAN_13 })]),
      );
      expect(done.result.fields.netQuantity).toMatchObject({ value: 250, unit: 'g' });
      expect(done.result.findings).toEqual([]);
      expect((await stats(key)).body).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 });
    } finally {
      await stop();
    }

    // The same scanId again is the same scan, not a second job.
    const again = await api().call('POST', '/api/scans', {
      key,
      json: { scanId: 'scan-1', userId: 'user-7', imageUrl: images.url('/label.png') },
    });
    expect(again.body).toEqual({ scanId: 'scan-1', status: 'QUEUED' });
    expect((await stats(key)).body).toEqual({ waiting: 0, active: 0, completed: 1, failed: 0 });
  });

  it('takes a multipart image with marketplaces as JSON text, and gives the scan an id when none is sent', async () => {
    const { key } = await api().vendor();
    const form = imageForm([{ bytes: label, name: 'label.png', type: 'image/png' }], {
      userId: 'user-8',
      category: 'food',
      marketplaces: '["amazon","walmart"]',
    });
    const submitted = await api().call('POST', '/api/scans', { key, form });
    expect(submitted.status).toBe(202);
    expect(Object.keys(submitted.body).sort()).toEqual(['scanId', 'status']);
    expect(submitted.body.status).toBe('QUEUED');
    const waiting = await status(key, submitted.body.scanId);
    expect(waiting.body).toMatchObject({ scanId: submitted.body.scanId, state: 'waiting' });

    const list = await api().call('GET', '/v1/jobs', { key });
    expect(list.body.jobs).toEqual([
      expect.objectContaining({
        type: 'label-analysis',
        metadata: { scanId: submitted.body.scanId, userId: 'user-8' },
      }),
    ]);
    const job = await api().services.engine.jobs.get(list.body.jobs[0].id);
    expect(job.options).toMatchObject({ category: 'food', marketplaces: ['amazon', 'walmart'], provider: 'none' });
    expect(job.inputBlob).not.toBeNull();
  });

  it('refuses bad scans with problem details', async () => {
    const { key } = await api().vendor();
    const bad = (json: unknown) => api().call('POST', '/api/scans', { key, json });
    expectProblem(await bad({ userId: 'u' }), 400, 'validation_failed');
    expectProblem(await bad({ userId: 'u', imageUrl: images.url(), marketplaces: ['mars'] }), 400, 'validation_failed');
    expectProblem(await bad({ userId: 'u', imageUrl: images.url(), category: 'weapons' }), 400, 'validation_failed');
    expectProblem(await bad({ imageUrl: images.url() }), 400, 'validation_failed');
    expectProblem(await bad({ userId: 'u', imageUrl: 'http://169.254.169.254/latest' }), 400, 'url_not_allowed');
    const form = imageForm([{ bytes: label, type: 'image/png' }], { userId: 'u', marketplaces: 'amazon' });
    expectProblem(await api().call('POST', '/api/scans', { key, form }), 400, 'validation_failed');
    expect((await stats(key)).body).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
  });

  it("isolates vendors: another vendor's scan is 404 and not in its stats; no key is 401", async () => {
    const owner = await api().vendor();
    const other = await api().vendor();
    const submitted = await api().call('POST', '/api/scans', {
      key: owner.key,
      json: { scanId: 'private-1', userId: 'u', imageUrl: images.url() },
    });
    expect(submitted.status).toBe(202);
    expectProblem(await status(other.key, 'private-1'), 404, 'not_found');
    expect((await stats(other.key)).body).toEqual({ waiting: 0, active: 0, completed: 0, failed: 0 });
    expectProblem(await api().call('GET', '/api/scans/private-1/status'), 401, 'unauthorized');
    expectProblem(await api().call('GET', '/api/queue/stats'), 401, 'unauthorized');
    expectProblem(
      await api().call('POST', '/api/scans', { json: { userId: 'u', imageUrl: images.url() } }),
      401,
      'unauthorized',
    );
    // The same scanId is the other vendor's own, separate scan.
    const theirs = await api().call('POST', '/api/scans', {
      key: other.key,
      json: { scanId: 'private-1', userId: 'v', imageUrl: images.url() },
    });
    expect(theirs.status).toBe(202);
    expect((await stats(other.key)).body).toEqual({ waiting: 1, active: 0, completed: 0, failed: 0 });
  });
});
