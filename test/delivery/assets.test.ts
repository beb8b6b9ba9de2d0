import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { ADMIN_KEY, expectProblem, imageForm, jpeg, png, waitForJob, type ApiHarness } from '../support/api.js';
import { credentials, describeEachSetup, imgproxyUrl, pathOf } from '../support/delivery.js';
import { waitUntil } from '../support/processes.js';
import { WEBHOOK_TEST_ENV, webhookReceiver } from '../support/webhook-receiver.js';

/**
 * Assets: publishing a job's output (at submission in every form a submission takes, or later), storing an
 * image directly, replacing (a new version), listing, deleting, the storage quota, and what the blob ledger's
 * sweep does with replaced and deleted bytes; retention never touches an asset.
 */
describeEachSetup('assets', (setup) => {
  let api: ApiHarness;
  let key: string;
  let vendorId: string;

  beforeAll(async () => {
    api = await setup.start({ ...WEBHOOK_TEST_ENV, PIXQ_DELIVERY_URL: 'https://cdn.example.com' });
    ({ key, id: vendorId } = await api.vendor());
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
  });

  const transform = { type: 'transform', options: { resize: { width: 40 }, format: 'png' } };

  async function submitted(res: { status: number; body: any; raw: Buffer }) {
    expect(res.status, res.raw.toString().slice(0, 300)).toBe(202);
    return waitForJob(api, key, res.body.id, ['succeeded', 'failed']);
  }

  /** Every blob store key that the sweep would delete now that the grace period is over. */
  async function sweepAfterGrace() {
    const blobs = api.services.blobs;
    return api.services.engine.blobs.sweep((k) => blobs.delete(k), Date.now() + BLOB_GRACE_MS + 1);
  }

  it('publishes a job submitted with publish: true at its id, and shows it on the job', async () => {
    const job = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: await jpeg() }], {
          type: 'transform',
          options: JSON.stringify(transform.options),
          publish: 'true',
        }),
      }),
    );
    expect(job.state).toBe('succeeded');
    expect(job.publish).toEqual({ path: job.id, error: null });
    const asset = (await api.call('GET', `/v1/assets/${job.id}`, { key })).body;
    expect(asset).toMatchObject({
      path: job.id,
      contentType: 'image/png',
      width: 40,
      jobId: job.id,
      bytes: job.outputs[0].bytes,
    });
    expect(job.outputs[0].asset).toEqual({ path: job.id, version: asset.version, url: asset.url });
    const original = await api.call('GET', pathOf(asset.url));
    expect(original.status).toBe(200);
    expect(original.headers.get('cache-control')).toContain('immutable');
    // The job's own signed link (on S3 a redirect to the bucket) has the same bytes.
    const download = Buffer.from(await (await fetch(api.base + job.outputs[0].url)).arrayBuffer());
    expect(original.raw.equals(download)).toBe(true);
  });

  it('publishes at a path, at a prefix for each job of a bulk (JSON and multipart), and by template', async () => {
    const upload = (await api.call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg() }]) })).body;
    const one = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        json: { ...transform, input: { uploadId: upload.id }, publish: { path: 'products/7/main' } },
      }),
    );
    expect((await api.call('GET', '/v1/assets/products/7/main', { key })).body.jobId).toBe(one.id);

    const bulk = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: {
        jobs: [
          { ...transform, input: { uploadId: upload.id }, publish: { prefix: 'bulk/' } },
          { ...transform, input: { uploadId: upload.id }, publish: { path: 'bulk/named' } },
        ],
      },
    });
    expect(bulk.status, bulk.raw.toString()).toBe(202);
    for (const id of bulk.body.jobIds) await waitForJob(api, key, id, ['succeeded']);
    const multipart = await api.call('POST', '/v1/jobs/bulk', {
      key,
      form: imageForm([{ bytes: await jpeg() }, { bytes: await jpeg(50, 40) }], {
        type: 'transform',
        options: JSON.stringify(transform.options),
        publish: '{"prefix": "shared/"}',
      }),
    });
    expect(multipart.status, multipart.raw.toString()).toBe(202);
    for (const id of multipart.body.jobIds) await waitForJob(api, key, id, ['succeeded']);
    const listed = (await api.call('GET', '/v1/assets?prefix=bulk/', { key })).body.assets.map((a: any) => a.path);
    expect(listed.sort()).toEqual([`bulk/${bulk.body.jobIds[0]}`, 'bulk/named'].sort());
    const shared = (await api.call('GET', '/v1/assets?prefix=shared/', { key })).body.assets.map((a: any) => a.path);
    expect(shared.sort()).toEqual(multipart.body.jobIds.map((id: string) => `shared/${id}`).sort());
    // One path cannot hold every output of a bulk.
    expectProblem(
      await api.call('POST', '/v1/jobs/bulk', {
        key,
        form: imageForm([{ bytes: await jpeg() }], { type: 'transform', publish: '{"path": "one"}' }),
      }),
      400,
      'validation_failed',
    );

    await api.call('POST', '/v1/templates', { key, json: { name: 'thumb40', ...transform } });
    const byTemplate = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        json: { template: 'thumb40', input: { uploadId: upload.id }, publish: { path: 'tpl/x' } },
      }),
    );
    expect((await api.call('GET', '/v1/assets/tpl/x', { key })).body.jobId).toBe(byTemplate.id);

    for (const publish of [{ path: '../x' }, { path: 'a//b' }, { prefix: '/abs' }, { path: '' }, { other: 1 }]) {
      const res = await api.call('POST', '/v1/jobs', {
        key,
        json: { ...transform, input: { uploadId: upload.id }, publish },
      });
      expect({ publish, status: res.status, code: res.body.code }).toEqual({
        publish,
        status: 400,
        code: 'validation_failed',
      });
    }
  });

  it('publishes a succeeded job later, and a replaced path gets the new bytes under a new version', async () => {
    const first = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: await jpeg(80, 60) }], { type: 'transform', options: '{"format":"png"}' }),
      }),
    );
    const second = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: await jpeg(60, 80) }], { type: 'transform', options: '{"format":"png"}' }),
      }),
    );
    const v1 = await api.call('POST', `/v1/jobs/${first.id}/publish`, { key, json: { path: 'later/a' } });
    expect(v1.status, v1.raw.toString()).toBe(200);
    expect(v1.body).toMatchObject({ path: 'later/a', width: 80, height: 60, jobId: first.id });
    const creds = await credentials(api, key);
    const url = imgproxyUrl(creds, 'later/a', { width: 20, format: 'png' });
    expect((await sharp((await api.call('GET', pathOf(url))).raw).metadata()).height).toBe(15);

    const v2 = (await api.call('POST', `/v1/jobs/${second.id}/publish`, { key, json: { path: 'later/a' } })).body;
    expect(v2.version).not.toBe(v1.body.version);
    expect(v2).toMatchObject({ width: 60, height: 80, jobId: second.id });
    // The same URL serves the new bytes; the first job no longer holds the path.
    expect((await sharp((await api.call('GET', pathOf(url))).raw).metadata()).height).toBe(27);
    expect((await api.call('GET', `/v1/jobs/${first.id}`, { key })).body.outputs[0].asset).toBeNull();
    expect((await api.call('GET', `/v1/jobs/${second.id}`, { key })).body.outputs[0].asset.version).toBe(v2.version);

    // Publishing with no path takes the job id.
    expect((await api.call('POST', `/v1/jobs/${first.id}/publish`, { key })).body.path).toBe(first.id);
    // A job without an output has nothing to publish.
    const noop = await submitted(await api.call('POST', '/v1/jobs', { key, json: { type: 'noop' } }));
    expectProblem(await api.call('POST', `/v1/jobs/${noop.id}/publish`, { key }), 409, 'invalid_state');
    expectProblem(await api.call('POST', '/v1/jobs/01HXXXXXXXXXXXXXXXXXXXXXXX/publish', { key }), 404, 'not_found');
  });

  it('stores an image with PUT, checked like an upload, and lists by prefix a page at a time', async () => {
    for (const name of ['c', 'a', 'b']) {
      const res = await api.call('PUT', `/v1/assets/list/${name}`, {
        key,
        form: imageForm([{ bytes: await png(10, 10), type: 'image/png' }]),
      });
      expect(res.status, res.raw.toString()).toBe(200);
    }
    const first = (await api.call('GET', '/v1/assets?prefix=list/&limit=2', { key })).body;
    expect(first.assets.map((a: any) => a.path)).toEqual(['list/a', 'list/b']);
    const next = (await api.call('GET', `/v1/assets?prefix=list/&limit=2&cursor=${first.nextCursor}`, { key })).body;
    expect(next).toMatchObject({ assets: [{ path: 'list/c' }], nextCursor: null });
    expectProblem(
      await api.call('PUT', '/v1/assets/list/text', {
        key,
        form: imageForm([{ bytes: Buffer.from('not an image'.repeat(20)) }]),
      }),
      415,
      'unsupported_media_type',
    );
    expectProblem(await api.call('PUT', '/v1/assets/list/none', { key, json: {} }), 415, 'unsupported_media_type');
    // (Dot segments never reach the server from fetch, which resolves them; test/delivery/options.test.ts has them.)
    for (const path of ['list//x', 'a%20b', 'x/', 'a:b', 'a%00b']) {
      const res = await api.call('PUT', `/v1/assets/${path}`, { key, form: imageForm([{ bytes: await png() }]) });
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
    }
  });

  it('deletes an asset; the sweep takes its bytes after the grace, and keeps bytes still referenced', async () => {
    const bytes = await png(12, 12);
    const unique = await png(13, 13);
    await api.call('PUT', '/v1/assets/del/shared', { key, form: imageForm([{ bytes, type: 'image/png' }]) });
    await api.call('PUT', '/v1/assets/del/twin', { key, form: imageForm([{ bytes, type: 'image/png' }]) });
    const lone = (
      await api.call('PUT', '/v1/assets/del/lone', { key, form: imageForm([{ bytes: unique, type: 'image/png' }]) })
    ).body;
    const shared = (await api.call('GET', '/v1/assets/del/shared', { key })).body;
    const blobOf = async (path: string) => (await api.services.engine.assets.get(vendorId, path)).blob;
    const [sharedBlob, loneBlob] = [await blobOf('del/shared'), await blobOf('del/lone')];
    expect((await api.call('DELETE', '/v1/assets/del/shared', { key })).status).toBe(204);
    expect((await api.call('DELETE', '/v1/assets/del/lone', { key })).status).toBe(204);
    expectProblem(await api.call('GET', '/v1/assets/del/lone', { key }), 404, 'not_found');
    expectProblem(await api.call('DELETE', '/v1/assets/del/lone', { key }), 404, 'not_found');
    expectProblem(await api.call('GET', pathOf(lone.url)), 404, 'not_found');
    // Before the grace nothing goes; after it, the deleted asset's bytes go and the twin's stay.
    expect(await api.services.blobs.exists(loneBlob)).toBe(true);
    await sweepAfterGrace();
    expect(await api.services.blobs.exists(loneBlob)).toBe(false);
    expect(await api.services.blobs.exists(sharedBlob)).toBe(true);
    expect((await api.call('GET', pathOf(shared.url.replace('del/shared', 'del/twin')))).status).toBe(403);
    const twin = (await api.call('GET', '/v1/assets/del/twin', { key })).body;
    expect((await api.call('GET', pathOf(twin.url))).status).toBe(200);
  });

  it('refuses a write past the storage quota, counts uploads too, and records a refused publish on its job', async () => {
    const small = await png(16, 16);
    const quota = small.length * 3 + 10;
    const v = await api.vendor(undefined, { maxStorageBytes: quota });
    const put = (path: string, bytes = small) =>
      api.call('PUT', `/v1/assets/${path}`, { key: v.key, form: imageForm([{ bytes, type: 'image/png' }]) });
    expect((await put('q/1')).status).toBe(200);
    expect((await put('q/2')).status).toBe(200);
    expect(
      (await api.call('POST', '/v1/uploads', { key: v.key, form: imageForm([{ bytes: small, type: 'image/png' }]) }))
        .status,
    ).toBe(201);
    expectProblem(await put('q/3'), 403, 'storage_quota_exceeded');
    // Replacing with the same size adds nothing, so it fits.
    expect((await put('q/1')).status).toBe(200);
    const me = (await api.call('GET', '/v1/vendors/me', { key: v.key })).body;
    expect(me.usage.storage).toEqual({ usedBytes: small.length * 3, maxBytes: quota });
    const adminView = (await api.call('GET', `/v1/vendors/${v.id}`, { key: ADMIN_KEY })).body;
    expect(adminView).toMatchObject({ maxStorageBytes: quota, storageBytes: small.length * 3 });

    // A job asked to publish when no room is left succeeds, unpublished, saying why.
    const upload = await api.call('POST', '/v1/uploads', {
      key: v.key,
      form: imageForm([{ bytes: small, type: 'image/png' }]),
    });
    expectProblem(upload, 403, 'storage_quota_exceeded');
    await api.call('DELETE', '/v1/assets/q/2', { key: v.key });
    const room = await api.call('POST', '/v1/uploads', {
      key: v.key,
      form: imageForm([{ bytes: small, type: 'image/png' }]),
    });
    expect(room.status).toBe(201);
    const refused = await api.call('POST', '/v1/jobs', {
      key: v.key,
      json: {
        type: 'transform',
        options: { resize: { width: 300 }, format: 'png' },
        input: { uploadId: room.body.id },
        publish: { path: 'q/big' },
      },
    });
    const done = await waitForJob(api, v.key, refused.body.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    expect(done.publish).toEqual({
      path: 'q/big',
      error: { code: 'storage_quota_exceeded', message: expect.any(String) },
    });
    expect(done.outputs[0].asset).toBeNull();
    expectProblem(await api.call('GET', '/v1/assets/q/big', { key: v.key }), 404, 'not_found');
  });

  it("tells the job's webhook where its output is published, on the configured delivery base", async () => {
    const receiver = await webhookReceiver();
    try {
      const job = await submitted(
        await api.call('POST', '/v1/jobs', {
          key,
          form: imageForm([{ bytes: await jpeg() }], {
            type: 'transform',
            options: '{"format":"png"}',
            publish: '{"path": "hooked/1"}',
            webhookUrl: receiver.url,
          }),
        }),
      );
      await waitUntil(() => receiver.delivered().length === 1, 30_000, 'the job.succeeded callback');
      const asset = (await api.call('GET', '/v1/assets/hooked/1', { key })).body;
      expect(asset.url).toMatch(/^https:\/\/cdn\.example\.com\/i\//);
      expect(receiver.delivered()[0].payload).toMatchObject({
        type: 'job.succeeded',
        data: { jobId: job.id, outputs: [{ asset: { path: 'hooked/1', version: asset.version, url: asset.url } }] },
      });
    } finally {
      await receiver.close();
    }
  });

  it("links every output to a thumbnail that its signed link's holder can read, rendered once", async () => {
    const job = await submitted(
      await api.call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: await jpeg(800, 400) }], { type: 'transform' }),
      }),
    );
    const { thumbnailUrl } = job.outputs[0];
    expect(thumbnailUrl).toMatch(/[?&]tw=320(&|$)/);
    const webp = await api.call('GET', thumbnailUrl, { headers: { accept: 'image/webp,*/*' } });
    expect(webp.status).toBe(200);
    expect(webp.headers.get('vary')).toBe('Accept');
    expect(await sharp(webp.raw).metadata()).toMatchObject({ format: 'webp', width: 320, height: 160 });
    const jpegThumb = await api.call('GET', thumbnailUrl, { headers: { accept: 'image/*' } });
    expect(jpegThumb.headers.get('content-type')).toBe('image/jpeg');
    const again = await api.call('GET', thumbnailUrl, {
      headers: { accept: 'image/webp,*/*', 'if-none-match': webp.headers.get('etag')! },
    });
    expect(again.status).toBe(304);
    // The size is part of what the link signs.
    expectProblem(await api.call('GET', thumbnailUrl.replace('tw=320', 'tw=1000')), 403, 'invalid_signature');
    expectProblem(await api.call('GET', thumbnailUrl.replace(/&?tw=320/, '')), 403, 'invalid_signature');
  });
});
