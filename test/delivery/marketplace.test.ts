import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { expectProblem, imageServer, startApi, type ApiHarness } from '../support/api.js';
import { PORTRAITS, portraitJpeg } from '../support/portraits.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';

/**
 * The marketplace's flow as its worker ran it before pixq: queue a background removal, poll the job, store
 * `result.outputUrl` in the product row. That URL must keep serving the cut-out after the signed links expire
 * and after retention has deleted the job (here a one-second link TTL and a retention of zero days).
 */
describeEachStore('the marketplace keeps its photo URL', (target) => {
  let api: ApiHarness;
  let photos: Awaited<ReturnType<typeof imageServer>>;

  beforeAll(async () => {
    api = await startApi(target, {
      PIXQ_URL_ALLOWLIST: '127.0.0.1',
      PIXQ_SIGNED_URL_TTL_S: '1',
      PIXQ_RETENTION_DAYS: '0',
    });
    photos = await imageServer(await portraitJpeg(PORTRAITS[0]));
  });
  afterAll(async () => {
    await photos?.close();
    await api?.close();
  });

  it('serves result.outputUrl after the link TTL and after retention deleted the job', async () => {
    const { key, vendor } = await api.vendor();
    const stop = await api.startWorker();
    const queued = await api.call('POST', '/api/image-queue/remove-bg-queue', {
      key,
      json: { recordId: 42, projectId: 'shop-7', photoUrl: photos.url('/p42.jpg'), vendorId: vendor.name },
    });
    expect(queued.status, queued.raw.toString()).toBe(200);
    let job: any;
    await waitUntil(
      async () => {
        job = (await api.call('GET', `/api/image-queue/job/${queued.body.jobId}`, { key })).body;
        return job.state === 'completed' || job.state === 'failed';
      },
      120_000,
      'the removal to finish',
    );
    await stop();
    expect(job.state, job.failedReason).toBe('completed');
    const { outputUrl } = job.result;
    // Published at <projectId>/<recordId>, with the version in the URL: cacheable for a year.
    expect(outputUrl).toMatch(new RegExp(`/i/${vendor.name}/[^/]+/cb:[0-9a-f]+/plain/shop-7/42@png$`));
    const path = new URL(outputUrl).pathname;
    const first = await api.call('GET', path);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await sharp(first.raw).metadata()).hasAlpha).toBe(true);

    // The job's own signed link expires after its TTL; the asset URL does not.
    const signed = (await api.call('GET', `/v1/jobs/${job.id}`, { key })).body.outputs[0].url;
    await waitUntil(async () => (await api.call('GET', signed)).status === 403, 10_000, 'the signed link to expire');
    expectProblem(await api.call('GET', signed), 403, 'url_expired');
    expect((await api.call('GET', path)).raw.equals(first.raw)).toBe(true);

    // Retention deletes the finished job; the sweep after the grace period deletes what nothing refers to.
    const blobs = api.services.blobs;
    expect(await api.services.engine.maintenance.prune(0, (k) => blobs.delete(k))).toBeGreaterThanOrEqual(1);
    expectProblem(await api.call('GET', `/api/image-queue/job/${job.id}`, { key }), 404, 'not_found');
    await api.services.engine.blobs.sweep((k) => blobs.delete(k), Date.now() + BLOB_GRACE_MS + 1);
    const later = await api.call('GET', path);
    expect(later.status).toBe(200);
    expect(later.raw.equals(first.raw)).toBe(true);
  });
});
