import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, imageServer, jpeg, useApi } from '../support/api.js';
import { PORTRAITS, portraitJpeg } from '../support/portraits.js';
import { waitUntil } from '../support/processes.js';

/**
 * The marketplace's Express + Bull API, called as its React client calls it: JSON bodies with
 * {recordId, projectId, photoUrl, vendorId}, Bull-style job polling, queue stats and worker health.
 */
describeEachStore('compat: /api/image-queue (Express + Bull)', (target) => {
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1' });
  let images: Awaited<ReturnType<typeof imageServer>>;
  let face: Awaited<ReturnType<typeof imageServer>>;
  let acme: { id: string; key: string; vendor: Record<string, unknown> };

  beforeAll(async () => {
    images = await imageServer(await jpeg(64, 48));
    face = await imageServer(await portraitJpeg(PORTRAITS[0]));
    acme = await api().vendor();
  });
  afterAll(async () => {
    await images?.close();
    await face?.close();
  });

  const poll = async (id: string, key = acme.key) => {
    let last: any;
    await waitUntil(
      async () => {
        last = (await api().call('GET', `/api/image-queue/job/${id}`, { key })).body;
        return last.state === 'completed' || last.state === 'failed';
      },
      60_000,
      `job ${id} to finish`,
    );
    return last;
  };

  it('queues a background removal and answers Bull’s shape while it waits', async () => {
    const res = await api().call('POST', '/api/image-queue/remove-bg-queue', {
      key: acme.key,
      json: { recordId: 'rec-1', projectId: 'proj-9', photoUrl: images.url(), vendorId: acme.id, shelf: 'B2' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ jobId: expect.any(String), status: 'waiting', estimatedTime: 5 });
    const job = await api().call('GET', `/api/image-queue/job/${res.body.jobId}`, { key: acme.key });
    expect(job.body).toEqual({
      id: res.body.jobId,
      state: 'waiting',
      progress: 0,
      result: null,
      failedReason: null,
      data: { recordId: 'rec-1', projectId: 'proj-9', photoUrl: images.url(), shelf: 'B2' },
    });
    // The same job through /v1: a remove-background job with pixq's default model, marked as coming from here.
    const v1 = await api().call('GET', `/v1/jobs/${res.body.jobId}`, { key: acme.key });
    expect(v1.body).toMatchObject({
      type: 'remove-background',
      state: 'queued',
      metadata: { via: 'image-queue', recordId: 'rec-1' },
    });
    expect(await api().call('POST', `/v1/jobs/${res.body.jobId}/cancel`, { key: acme.key })).toMatchObject({
      status: 200,
    });
    expect((await api().call('GET', `/api/image-queue/job/${res.body.jobId}`, { key: acme.key })).body).toMatchObject({
      state: 'failed',
      failedReason: 'cancelled',
    });
  });

  it('runs face crops to completed with the result, and failed with the reason', async () => {
    const stop = await api().startWorker();
    try {
      const ok = await api().call('POST', '/api/image-queue/crop-face-queue', {
        key: acme.key,
        json: { recordId: 7, photoUrl: face.url('/face.jpg') },
      });
      const bad = await api().call('POST', '/api/image-queue/crop-face-queue', {
        key: acme.key,
        json: { recordId: 8, photoUrl: images.url('/no-face.jpg'), vendorId: acme.vendor.name },
      });
      expect([ok.status, bad.status]).toEqual([200, 200]);
      const done = await poll(ok.body.jobId);
      expect(done).toEqual({
        id: ok.body.jobId,
        state: 'completed',
        progress: 100,
        result: {
          // Published by default: the permanent delivery URL of the crop, at the job id (no projectId given).
          outputUrl: expect.stringMatching(
            new RegExp(
              `^http://127\\.0\\.0\\.1:\\d+/i/${acme.vendor.name}/[^/]+/cb:[0-9a-f]+/plain/${ok.body.jobId}@jpg$`,
            ),
          ),
          contentType: 'image/jpeg',
          width: expect.any(Number),
          height: expect.any(Number),
          details: expect.objectContaining({ faces: expect.any(Array) }),
        },
        failedReason: null,
        data: { recordId: 7, photoUrl: face.url('/face.jpg') },
      });
      expect((await api().call('GET', new URL(done.result.outputUrl).pathname)).contentType).toBe('image/jpeg');
      const failed = await poll(bad.body.jobId);
      expect(failed).toEqual({
        id: bad.body.jobId,
        state: 'failed',
        progress: expect.any(Number),
        result: null,
        failedReason: expect.stringMatching(/face/i),
        data: { recordId: 8, photoUrl: images.url('/no-face.jpg') },
      });

      const health = await api().call('GET', '/api/worker/health', { key: acme.key });
      expect(health.body).toEqual({
        status: 'healthy',
        workers: 1,
        activeJobs: expect.any(Number),
        timestamp: expect.any(String),
      });
    } finally {
      await stop();
    }
  });

  it('queues bulk removals and crops in one transaction: {jobIds, count, estimatedTime}', async () => {
    const vendor = await api().vendor();
    for (const [path, type] of [
      ['bulk-remove-bg', 'remove-background'],
      ['bulk-crop-face', 'face-crop'],
    ]) {
      const res = await api().call('POST', `/api/image-queue/${path}`, {
        key: vendor.key,
        json: {
          projectId: 'p1',
          vendorId: vendor.id,
          photos: [
            { recordId: 'a', photoUrl: images.url('/a.jpg') },
            { recordId: 'b', photoUrl: images.url('/b.jpg') },
          ],
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toEqual({ jobIds: [expect.any(String), expect.any(String)], count: 2, estimatedTime: 10 });
      const second = await api().call('GET', `/v1/jobs/${res.body.jobIds[1]}`, { key: vendor.key });
      expect(second.body).toMatchObject({
        type,
        batchId: expect.any(String),
        metadata: { via: 'image-queue', projectId: 'p1', recordId: 'b' },
      });
    }
    const stats = await api().call('GET', '/api/image-queue/queue-stats', { key: vendor.key });
    expect(stats.body).toEqual({
      'remove-bg': { waiting: 2, active: 0, completed: 0, failed: 0, delayed: 0 },
      'crop-face': { waiting: 2, active: 0, completed: 0, failed: 0, delayed: 0 },
    });
  });

  it("queues a bulk sent as the old client's parallel arrays {recordIds, projectId, photoUrls, vendorId}", async () => {
    const vendor = await api().vendor();
    const res = await api().call('POST', '/api/image-queue/bulk-remove-bg', {
      key: vendor.key,
      json: {
        recordIds: ['r1', 2],
        projectId: 'p9',
        photoUrls: [images.url('/one.jpg'), images.url('/two.jpg')],
        vendorId: vendor.id,
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ jobIds: [expect.any(String), expect.any(String)], count: 2 });
    const jobs = await Promise.all(
      res.body.jobIds.map(async (id: string) => (await api().call('GET', `/v1/jobs/${id}`, { key: vendor.key })).body),
    );
    expect(jobs.map((j) => [j.type, j.metadata])).toEqual([
      ['remove-background', { via: 'image-queue', projectId: 'p9', recordId: 'r1', photoUrl: images.url('/one.jpg') }],
      ['remove-background', { via: 'image-queue', projectId: 'p9', recordId: 2, photoUrl: images.url('/two.jpg') }],
    ]);
    const crops = await api().call('POST', '/api/image-queue/bulk-crop-face', {
      key: vendor.key,
      json: { recordIds: ['c1'], projectId: 'p9', photoUrls: [images.url('/three.jpg')] },
    });
    expect(crops.body).toMatchObject({ count: 1 });
  });

  it('refuses parallel arrays of different lengths, both shapes at once, and another vendor in either', async () => {
    const vendor = await api().vendor();
    const other = await api().vendor();
    const bulk = (json: unknown) => api().call('POST', '/api/image-queue/bulk-remove-bg', { key: vendor.key, json });
    const urls = [images.url('/a.jpg'), images.url('/b.jpg')];
    expectProblem(await bulk({ recordIds: ['a'], photoUrls: urls }), 400, 'validation_failed');
    expectProblem(await bulk({ photoUrls: urls, photos: [{ photoUrl: urls[0] }] }), 400, 'validation_failed');
    expectProblem(await bulk({ projectId: 'p' }), 400, 'validation_failed');
    expectProblem(await bulk({ recordIds: ['a', 'b'], photoUrls: urls, vendorId: other.id }), 403, 'forbidden');
  });

  it('refuses a vendorId that is not the key’s vendor (403), private URLs (400) and keyless calls (401)', async () => {
    const other = await api().vendor();
    const body = { recordId: 'x', photoUrl: images.url() };
    expectProblem(
      await api().call('POST', '/api/image-queue/remove-bg-queue', {
        key: acme.key,
        json: { ...body, vendorId: other.id },
      }),
      403,
      'forbidden',
    );
    expectProblem(
      await api().call('POST', '/api/image-queue/bulk-remove-bg', {
        key: acme.key,
        json: { photos: [{ ...body, vendorId: other.vendor.name }] },
      }),
      403,
      'forbidden',
    );
    expectProblem(
      await api().call('POST', '/api/image-queue/remove-bg-queue', {
        key: acme.key,
        json: { photoUrl: 'http://169.254.169.254/latest/meta-data' },
      }),
      400,
      'url_not_allowed',
    );
    expectProblem(await api().call('POST', '/api/image-queue/crop-face-queue', { json: body }), 401, 'unauthorized');
    expectProblem(
      await api().call('POST', '/api/image-queue/remove-bg-queue', { key: acme.key, json: { recordId: 'no-url' } }),
      400,
      'validation_failed',
    );
  });
});
