import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { BatchView, UploadView } from '../../src/api/schemas.js';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, expectShape, imageForm, jpeg, png, useApi, waitForJob } from '../support/api.js';

/** Bulk submissions (JSON and multipart), uploads for reuse, and batch progress, over real HTTP. */
describeEachStore('bulk submissions, uploads and batches', (target) => {
  const api = useApi(target, { PIXQ_MAX_BULK_FILES: '5' });

  it('stores an upload: 201 with its sniffed type and size, whatever the file claimed to be', async () => {
    const { key } = await api().vendor();
    // A PNG sent as "photo.jpg" with a JPEG content type: the bytes decide.
    const res = await api().call('POST', '/v1/uploads', {
      key,
      form: imageForm([{ bytes: await png(30, 20), name: 'photo.jpg', type: 'image/jpeg' }]),
    });
    expect(res.status).toBe(201);
    expectShape(UploadView, res.body);
    expect(res.body).toMatchObject({ contentType: 'image/png', width: 30, height: 20 });
  });

  it('refuses an upload that is not multipart (415) or has no "image" field (400)', async () => {
    const { key } = await api().vendor();
    expectProblem(
      await api().call('POST', '/v1/uploads', { key, json: { image: 'base64...' } }),
      415,
      'unsupported_media_type',
    );
    const form = new FormData();
    form.append('picture', new Blob([await jpeg()]), 'a.jpg');
    expectProblem(await api().call('POST', '/v1/uploads', { key, form }), 400, 'validation_failed');
  });

  it('runs two jobs on one upload, each with its own output', async () => {
    const { key } = await api().vendor();
    const upload = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg(80, 60) }]) });
    const ids: string[] = [];
    for (const format of ['png', 'webp']) {
      const res = await api().call('POST', '/v1/jobs', {
        key,
        json: { type: 'transform', input: { uploadId: upload.body.id }, options: { format } },
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    const stop = await api().startWorker();
    try {
      const [a, b] = await Promise.all(ids.map((id) => waitForJob(api(), key, id, ['succeeded', 'failed'])));
      expect([a.outputs[0]?.contentType, b.outputs[0]?.contentType]).toEqual(['image/png', 'image/webp']);
      const bytes = await api().call('GET', b.outputs[0].url);
      expect(await sharp(bytes.raw).metadata()).toMatchObject({ format: 'webp', width: 80, height: 60 });
    } finally {
      await stop();
    }
  });

  it('accepts a JSON bulk of mixed jobs as one batch and reports its progress', async () => {
    const { key } = await api().vendor();
    const upload = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg() }]) });
    const res = await api().call('POST', '/v1/jobs/bulk', {
      key,
      json: {
        jobs: [
          { type: 'noop' },
          { type: 'noop', options: { ms: 1 }, metadata: { n: 2 } },
          { type: 'transform', input: { uploadId: upload.body.id } },
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ batchId: expect.any(String), count: 3 });
    expect(res.body.jobIds).toHaveLength(3);

    const before = await api().call('GET', `/v1/batches/${res.body.batchId}`, { key });
    expect(before.status).toBe(200);
    expectShape(BatchView, before.body);
    expect(before.body).toMatchObject({
      id: res.body.batchId,
      total: 3,
      counts: { queued: 3, succeeded: 0 },
      percent: 0,
    });

    // Cancelling one finishes it: a third of the batch is done.
    await api().call('POST', `/v1/jobs/${res.body.jobIds[0]}/cancel`, { key });
    const after = await api().call('GET', `/v1/batches/${res.body.batchId}`, { key });
    expect(after.body).toMatchObject({ total: 3, counts: { queued: 2, cancelled: 1 }, percent: 33.3 });

    const stop = await api().startWorker();
    try {
      for (const id of res.body.jobIds.slice(1)) await waitForJob(api(), key, id, ['succeeded']);
      const done = await api().call('GET', `/v1/batches/${res.body.batchId}`, { key });
      expect(done.body).toMatchObject({ total: 3, counts: { succeeded: 2, cancelled: 1 }, percent: 100 });
    } finally {
      await stop();
    }
  });

  it('accepts a multipart bulk: one job per "image" file, sharing type and options', async () => {
    const { key } = await api().vendor();
    const files = [
      { bytes: await jpeg(40, 30) },
      { bytes: await png(20, 20), name: 'b.png', type: 'image/png' },
      { bytes: await jpeg(50, 50) },
    ];
    const res = await api().call('POST', '/v1/jobs/bulk', {
      key,
      form: imageForm(files, { type: 'transform', options: '{"format":"png"}' }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.count).toBe(3);
    const jobs = await Promise.all(res.body.jobIds.map((id: string) => api().services.engine.jobs.get(id)));
    expect(jobs.map((j) => [j.type, j.options.format, j.batchId])).toEqual(
      Array(3).fill(['transform', 'png', res.body.batchId]),
    );
    expect(new Set(jobs.map((j) => j.inputBlob)).size).toBe(3);
    // Each file's bytes were stored as they came, in order.
    const sizes = await Promise.all(
      jobs.map(async (j) => (await sharp(await api().services.blobs.get(j.inputBlob!)).metadata()).width),
    );
    expect(sizes).toEqual([40, 20, 50]);
  });

  it('refuses a whole bulk when one job is invalid, naming its index, and creates none', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [{ type: 'noop' }, { type: 'noop', options: { ms: 'soon' } }] },
    });
    expectProblem(res, 400, 'validation_failed');
    expect(res.body.detail).toMatch(/^jobs\[1\]: /);
    const unknown = await api().call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [{ type: 'noop' }, { type: 'sharpen' }] },
    });
    expectProblem(unknown, 400, 'unknown_job_type');
    expect(unknown.body.detail).toMatch(/^jobs\[1\]: /);
    expectProblem(await api().call('POST', '/v1/jobs/bulk', { key, json: { jobs: [] } }), 400, 'validation_failed');
    expect((await api().call('GET', '/v1/jobs', { key })).body.jobs).toEqual([]);
  });

  it('removes the files of a multipart submission that fails, keeping blobs other uploads share', async () => {
    const { id: vendorId, key } = await api().vendor();
    const { services } = api();
    const uploadsOf = async () =>
      await services.engine.store.db
        .selectFrom('uploads')
        .select(['id', 'blob'])
        .where('vendor_id', '=', vendorId)
        .execute();
    const shared = await jpeg(30, 30);
    const kept = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: shared }]) });
    expect(kept.status).toBe(201);
    const [keptUpload] = await uploadsOf();
    const fresh = await jpeg(41, 31);

    // A later file refused after two were stored; invalid options after all were; one job with a bad option.
    const failures = [
      await api().call('POST', '/v1/jobs/bulk', {
        key,
        form: imageForm([{ bytes: fresh }, { bytes: shared }, { bytes: Buffer.from('not an image') }], {
          type: 'transform',
        }),
      }),
      await api().call('POST', '/v1/jobs/bulk', {
        key,
        form: imageForm([{ bytes: fresh }, { bytes: shared }], { type: 'transform', options: '{"width":"wide"}' }),
      }),
      await api().call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: fresh }], { type: 'transform', options: '{"width":"wide"}' }),
      }),
    ];
    expect(failures.map((r) => r.status)).toEqual([415, 400, 400]);

    // The cleanup runs once each answer has gone out.
    await waitUntil(async () => (await uploadsOf()).length <= 1, 30_000, 'the failed submissions to be cleaned up');
    expect(await uploadsOf()).toEqual([keptUpload]);
    // Blobs are named by the SHA-256 of their bytes. The ledger's sweep deletes the unreferenced one once its
    // grace period is over (the sweep is run here as of that time), and keeps the one an upload still uses.
    const freshKey = createHash('sha256').update(fresh).digest('hex');
    expect(await services.blobs.exists(freshKey)).toBe(true);
    await services.engine.blobs.sweep((blob) => services.blobs.delete(blob), Date.now() + BLOB_GRACE_MS);
    expect(await services.blobs.exists(keptUpload.blob)).toBe(true);
    expect(await services.blobs.exists(freshKey)).toBe(false);
  });

  it('answers 404 for an unknown batch', async () => {
    const { key } = await api().vendor();
    expectProblem(await api().call('GET', '/v1/batches/01ZZZZZZZZZZZZZZZZZZZZZZZZ', { key }), 404, 'not_found');
  });

  it('keeps a batch summary consistent with the listed jobs', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [1, 2, 3, 4, 5].map(() => ({ type: 'noop' })) },
    });
    const listed = await api().call('GET', `/v1/jobs?batchId=${res.body.batchId}`, { key });
    expect(listed.body.jobs.map((j: { id: string }) => j.id).sort()).toEqual([...res.body.jobIds].sort());
    expectShape(BatchView, (await api().call('GET', `/v1/batches/${res.body.batchId}`, { key })).body);
  });
});
