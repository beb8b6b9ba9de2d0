import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobList, JobView } from '../../src/api/schemas.js';
import { loadSigningSecret, signBlobUrl } from '../../src/blobs/index.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, expectShape, imageForm, imageServer, jpeg, useApi, waitForJob } from '../support/api.js';

/**
 * Single-job endpoints over real HTTP: submit (JSON url/uploadId, multipart, Idempotency-Key), get with the
 * full shape and signed output URLs, list with every filter and cursor pagination, cancel, retry, output
 * download, and the signed blob route (valid, expired, tampered).
 */
describeEachStore('jobs API', (target) => {
  // 127.0.0.1 is allowlisted here so URL inputs can point at a local static image server.
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1' });
  let images: Awaited<ReturnType<typeof imageServer>>;
  let photo: Buffer;

  beforeAll(async () => {
    photo = await jpeg(120, 80);
    images = await imageServer(photo);
  });
  afterAll(async () => images?.close());

  it('accepts a JSON job with a URL input: 202, Location, the job view', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs', {
      key,
      json: {
        type: 'transform',
        input: { url: images.url() },
        options: { format: 'png' },
        priority: 7,
        maxAttempts: 2,
        metadata: { sku: 'A-1' },
      },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/jobs/${res.body.id}`);
    expectShape(JobView, res.body);
    expect(res.body).toMatchObject({
      type: 'transform',
      state: 'queued',
      priority: 7,
      maxAttempts: 2,
      attempts: 0,
      metadata: { sku: 'A-1' },
      outputs: [],
      error: null,
    });
    // The stored job keeps the URL exactly as checked (nothing was downloaded at submit time).
    const stored = await api().services.engine.jobs.get(res.body.id);
    expect(stored.inputUrl).toBe(images.url());
  });

  it('accepts a job on an uploaded image (JSON uploadId) and a multipart job with an image file', async () => {
    const { key } = await api().vendor();
    const upload = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: photo }]) });
    expect(upload.status).toBe(201);
    const byId = await api().call('POST', '/v1/jobs', {
      key,
      json: { type: 'transform', input: { uploadId: upload.body.id } },
    });
    expect(byId.status).toBe(202);
    const multipart = await api().call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: photo }], {
        type: 'transform',
        options: JSON.stringify({ format: 'webp' }),
        priority: '3',
        metadata: '{"from":"form"}',
      }),
    });
    expect(multipart.status, JSON.stringify(multipart.body)).toBe(202);
    expect(multipart.body).toMatchObject({ type: 'transform', priority: 3, metadata: { from: 'form' } });
    const [a, b] = await Promise.all([byId.body.id, multipart.body.id].map((id) => api().services.engine.jobs.get(id)));
    // Both reference the uploaded bytes by their content address, the same blob for the same image.
    expect(a.inputBlob).toMatch(/^[0-9a-f]{64}$/);
    expect(b.inputBlob).toBe(a.inputBlob);
    expect(b.options).toEqual({ format: 'webp' });
  });

  it('returns the same job for a repeated Idempotency-Key, a new one for another key or vendor', async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    const submit = (key: string, idem: string) =>
      api().call('POST', '/v1/jobs', { key, json: { type: 'noop' }, headers: { 'idempotency-key': idem } });
    const first = await submit(a.key, 'order-42');
    const again = await submit(a.key, 'order-42');
    const other = await submit(a.key, 'order-43');
    const otherVendor = await submit(b.key, 'order-42');
    expect([first.status, again.status, other.status, otherVendor.status]).toEqual([202, 202, 202, 202]);
    expect(again.body.id).toBe(first.body.id);
    expect(other.body.id).not.toBe(first.body.id);
    expect(otherVendor.body.id).not.toBe(first.body.id);
    const listed = await api().call('GET', '/v1/jobs', { key: a.key });
    expect(listed.body.jobs).toHaveLength(2);
  });

  it('processes a transform job; the job view has outputs with signed URLs that download the image', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs', {
      key,
      json: { type: 'transform', input: { url: images.url() }, options: { resize: { width: 60 }, format: 'png' } },
    });
    expect(res.status).toBe(202);
    const stop = await api().startWorker();
    try {
      const job = await waitForJob(api(), key, res.body.id, ['succeeded', 'failed']);
      expect(job.state, JSON.stringify(job.error)).toBe('succeeded');
      expectShape(JobView, job);
      expect(job).toMatchObject({ attempts: 1, progress: { percent: 100 }, error: null });
      expect(Date.parse(job.finishedAt)).toBeGreaterThanOrEqual(Date.parse(job.startedAt));
      expect(job.outputs).toHaveLength(1);
      const [output] = job.outputs;
      expect(output).toMatchObject({ contentType: 'image/png', width: 60, height: 40 });
      expect(output.url).toMatch(/^\/v1\/blobs\/[0-9a-f]{64}\?exp=\d+&ct=image%2Fpng&vid=[0-9A-Z]+&sig=/);

      // The signed URL needs no API key; it serves exactly the output's bytes with its type.
      const download = await api().call('GET', output.url);
      expect(download.status).toBe(200);
      expect(download.contentType).toBe('image/png');
      expect(download.headers.get('x-content-type-options')).toBe('nosniff');
      expect(download.raw.length).toBe(output.bytes);
      expect(await sharp(download.raw).metadata()).toMatchObject({ format: 'png', width: 60, height: 40 });

      // The list shows the same outputs as the job view (it once listed every job with none).
      const listed = await api().call('GET', '/v1/jobs', { key });
      const [entry] = listed.body.jobs;
      expect(entry.id).toBe(job.id);
      expect(entry.outputs.map(({ url: _url, ...o }: { url: string }) => o)).toEqual(
        job.outputs.map(({ url: _url, ...o }: { url: string }) => o),
      );
      expect((await api().call('GET', entry.outputs[0].url)).raw.equals(download.raw)).toBe(true);

      // GET /v1/jobs/:id/output serves the same bytes to the owner.
      const direct = await api().call('GET', `/v1/jobs/${job.id}/output`, { key });
      expect(direct.status).toBe(200);
      expect(direct.contentType).toBe('image/png');
      expect(Number(direct.headers.get('content-length'))).toBe(output.bytes);
      expect(direct.raw.equals(download.raw)).toBe(true);
    } finally {
      await stop();
    }
  });

  it('answers 404 not_found for the output of a job that has none', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    expectProblem(await api().call('GET', `/v1/jobs/${res.body.id}/output`, { key }), 404, 'not_found');
    expectProblem(await api().call('GET', '/v1/jobs/01ZZZZZZZZZZZZZZZZZZZZZZZZ', { key }), 404, 'not_found');
  });

  it('refuses expired and tampered signed blob URLs with 403', async () => {
    const { key, id: vendorId } = await api().vendor();
    const upload = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: photo }]) });
    const { blob } = await api().services.engine.uploads.get(upload.body.id, vendorId);
    const secret = await loadSigningSecret(api().config);
    const sign = (expiresAt: number, contentType = 'image/jpeg') =>
      signBlobUrl({ key: blob, vendorId, contentType, expiresAt }, secret);

    const valid = await api().call('GET', sign(Date.now() + 60_000));
    expect(valid.status).toBe(200);
    expect(valid.raw.equals(photo)).toBe(true);

    expectProblem(await api().call('GET', sign(Date.now() - 1000)), 403, 'url_expired');

    const url = new URL(sign(Date.now() + 60_000), api().base);
    const tamper = (name: string, value: string) => {
      const copy = new URL(url);
      copy.searchParams.set(name, value);
      return copy.pathname + copy.search;
    };
    const sig = url.searchParams.get('sig')!;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    for (const path of [
      tamper('sig', flipped),
      tamper('exp', String(Number(url.searchParams.get('exp')) + 3600)), // extending the expiry
      tamper('ct', 'image/png'), // re-typing the bytes
      tamper('vid', '01OTHERVENDOR0000000000000'),
      url.pathname.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a')) + url.search, // another blob under the same signature
      url.pathname, // no signature at all
    ]) {
      expectProblem(await api().call('GET', path), 403, 'invalid_signature');
    }
  });

  it('cancels a queued job, refuses a second cancel with 409, retries it, and refuses retrying a queued job', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    const cancelled = await api().call('POST', `/v1/jobs/${res.body.id}/cancel`, { key });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ id: res.body.id, state: 'cancelled' });
    expect(cancelled.body.finishedAt).not.toBeNull();
    expectProblem(await api().call('POST', `/v1/jobs/${res.body.id}/cancel`, { key }), 409, 'invalid_state');
    const retried = await api().call('POST', `/v1/jobs/${res.body.id}/retry`, { key });
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({
      id: res.body.id,
      state: 'queued',
      attempts: 0,
      finishedAt: null,
      error: null,
    });
    expectProblem(await api().call('POST', `/v1/jobs/${res.body.id}/retry`, { key }), 409, 'invalid_state');
  });

  it('cancels a running job: it ends cancelled', async () => {
    const { key } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 30_000 } } });
    const stop = await api().startWorker();
    try {
      await waitForJob(api(), key, res.body.id, ['running']);
      const flagged = await api().call('POST', `/v1/jobs/${res.body.id}/cancel`, { key });
      expect(flagged.status).toBe(200);
      const done = await waitForJob(api(), key, res.body.id, ['cancelled', 'failed', 'succeeded']);
      expect(done.state).toBe('cancelled');
    } finally {
      await stop();
    }
  });

  describe('listing', () => {
    let key: string;
    const ids: Record<string, string[]> = { noop: [], transform: [], batch: [] };
    let batchId: string;
    let middle: string;

    beforeAll(async () => {
      ({ key } = await api().vendor());
      for (let i = 0; i < 5; i++)
        ids.noop.push((await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } })).body.id);
      // `middle` strictly after the noops' created_at (whole milliseconds): a fast machine creates the last one in
      // the same millisecond as a clock read right after it.
      const noopsCreated = Date.now();
      await waitUntil(() => Date.now() > noopsCreated, 10_000, 'the clock to pass the last noop');
      middle = new Date().toISOString();
      // Created strictly after `middle`: created_at is in whole milliseconds.
      await waitUntil(() => Date.now() > Date.parse(middle), 10_000, 'the clock to pass `middle`');
      for (let i = 0; i < 3; i++) {
        ids.transform.push(
          (await api().call('POST', '/v1/jobs', { key, json: { type: 'transform', input: { url: images.url() } } }))
            .body.id,
        );
      }
      const bulk = await api().call('POST', '/v1/jobs/bulk', {
        key,
        json: { jobs: [{ type: 'noop' }, { type: 'noop' }] },
      });
      batchId = bulk.body.batchId;
      ids.batch = bulk.body.jobIds;
      await api().call('POST', `/v1/jobs/${ids.noop[0]}/cancel`, { key });
    });

    const list = async (query: string) => {
      const res = await api().call('GET', `/v1/jobs${query}`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectShape(JobList, res.body);
      return res.body as {
        jobs: { id: string; state: string; type: string; createdAt: string }[];
        nextCursor: string | null;
      };
    };

    it('lists newest first and filters by state, type, batchId and creation time', async () => {
      const all = await list('?limit=100');
      expect(all.jobs.map((j) => j.id)).toEqual([...ids.noop, ...ids.transform, ...ids.batch].sort().reverse());
      expect(all.nextCursor).toBeNull();
      expect((await list('?state=cancelled')).jobs.map((j) => j.id)).toEqual([ids.noop[0]]);
      expect((await list('?type=transform')).jobs.map((j) => j.id).sort()).toEqual([...ids.transform].sort());
      expect((await list(`?batchId=${batchId}`)).jobs.map((j) => j.id).sort()).toEqual([...ids.batch].sort());
      expect(
        (await list(`?createdBefore=${encodeURIComponent(middle)}&limit=100`)).jobs.map((j) => j.id).sort(),
      ).toEqual([...ids.noop].sort());
      expect(
        (await list(`?createdAfter=${encodeURIComponent(middle)}&type=noop`)).jobs.map((j) => j.id).sort(),
      ).toEqual([...ids.batch].sort());
      expect((await list('?state=queued&type=transform')).jobs).toHaveLength(3);
      expect((await list('?state=succeeded')).jobs).toEqual([]);
    });

    it('pages through every job exactly once with the cursor', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: Awaited<ReturnType<typeof list>> = await list(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.jobs.length).toBeLessThanOrEqual(3);
        seen.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(pages).toBe(4); // 10 jobs, 3 per page
      expect(seen).toEqual([...ids.noop, ...ids.transform, ...ids.batch].sort().reverse());
    });

    it('refuses bad filters with 400 validation_failed', async () => {
      for (const query of [
        '?state=done',
        '?limit=0',
        '?limit=101',
        '?createdAfter=yesterday',
        '?colour=red',
        '?cursor=%00',
      ]) {
        expectProblem(await api().call('GET', `/v1/jobs${query}`, { key }), 400, 'validation_failed');
      }
    });
  });
});
