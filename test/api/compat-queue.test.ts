import { beforeAll, describe, expect, it, vi } from 'vitest';
import { claim, succeed } from '../support/engine.js';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, jpeg, useApi, waitForJob, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';

/** The FastAPI rembg queue's own calls: multipart "images" into one job, polling, listing, stats, cancel, health. */
function imagesForm(files: { bytes: Buffer; name: string }[]) {
  const form = new FormData();
  for (const f of files) form.append('images', new Blob([f.bytes], { type: 'image/jpeg' }), f.name);
  return form;
}

const ISO = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);

describeEachStore('compat: /queue (FastAPI rembg queue)', (target) => {
  const api = useApi(target);
  let photo: Buffer;
  let acme: { id: string; key: string };

  beforeAll(async () => {
    photo = await jpeg(48, 36);
    acme = await api().vendor();
  });

  it('submits many files as one batch job and reports it while pending, listed, counted and cancelled', async () => {
    const res = await api().call('POST', '/queue/submit?model=u2net', {
      key: acme.key,
      form: imagesForm([
        { bytes: photo, name: 'a.jpg' },
        { bytes: photo, name: 'b.jpg' },
      ]),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      job_id: expect.any(String),
      status: 'queued',
      job_type: 'batch',
      files_count: 2,
      model: 'u2net',
      message: 'job queued with 2 files',
    });
    const id = res.body.job_id;
    const pending = {
      id,
      status: 'pending',
      type: 'batch',
      created_at: ISO,
      started_at: null,
      completed_at: null,
      progress: { total: 2, processed: 0, failed: 0 },
      model: 'u2net',
      filenames: ['a.jpg', 'b.jpg'],
      results: [
        { filename: 'a.jpg', status: 'pending', url: null, error: null },
        { filename: 'b.jpg', status: 'pending', url: null, error: null },
      ],
      error: null,
    };
    expect((await api().call('GET', `/queue/job/${id}`, { key: acme.key })).body).toEqual(pending);
    // u2net became pixq's default model; the batch is a normal /v1 batch.
    const v1 = await api().call('GET', `/v1/jobs?batchId=${id}`, { key: acme.key });
    expect(v1.body.jobs.map((j: { type: string; metadata: { via: string } }) => [j.type, j.metadata.via])).toEqual([
      ['remove-background', 'queue'],
      ['remove-background', 'queue'],
    ]);

    const single = await api().call('POST', '/queue/submit', {
      key: acme.key,
      form: imagesForm([{ bytes: photo, name: 'c.jpg' }]),
    });
    expect(single.body).toEqual({
      job_id: expect.any(String),
      status: 'queued',
      job_type: 'single',
      files_count: 1,
      model: 'isnet-int8',
      message: 'job queued with 1 file',
    });

    expect((await api().call('GET', '/queue/jobs?status=pending&limit=1', { key: acme.key })).body).toEqual({
      total: 2,
      jobs: [expect.objectContaining({ id: single.body.job_id, type: 'single', model: 'isnet-int8' })],
    });
    expect((await api().call('GET', '/queue/stats', { key: acme.key })).body).toEqual({
      stats: { pending: 3, processing: 0, completed: 0, failed: 0, cancelled: 0, total: 3 },
      worker: { status: 'stopped', active_jobs: 0, max_concurrent: 0 },
    });

    const cancel = await api().call('POST', `/queue/job/${id}/cancel`, { key: acme.key });
    expect(cancel.body).toEqual({ job_id: id, status: 'cancelled', message: 'cancelled 2 of 2 files' });
    const cancelled = (await api().call('GET', `/queue/job/${id}`, { key: acme.key })).body;
    expect(cancelled).toEqual({
      ...pending,
      status: 'cancelled',
      completed_at: ISO,
      progress: { total: 2, processed: 2, failed: 0 },
      results: pending.results.map((r) => ({ ...r, status: 'cancelled' })),
    });
    expect((await api().call('GET', '/queue/jobs?status=cancelled', { key: acme.key })).body).toEqual({
      total: 1,
      jobs: [cancelled],
    });
    expectProblem(await api().call('POST', `/queue/job/${id}/cancel`, { key: acme.key }), 409, 'invalid_state');
    // Keyless and bound to no vendor: up and whether workers run, no counts of anyone's jobs.
    expect((await api().call('GET', '/health')).body).toEqual({ status: 'healthy', worker: { status: 'stopped' } });
  });

  it('runs a job to completed with a result URL per file and progress {total, processed, failed}', async () => {
    const vendor = await api().vendor();
    const res = await api().call('POST', '/queue/submit?model=u2netp', {
      key: vendor.key,
      form: imagesForm([
        { bytes: photo, name: 'keep.jpg' },
        { bytes: photo, name: 'drop.jpg' },
      ]),
    });
    const id = res.body.job_id;
    const files = (await api().call('GET', `/v1/jobs?batchId=${id}`, { key: vendor.key })).body.jobs;
    const dropped = files.find((j: { metadata: { filename: string } }) => j.metadata.filename === 'drop.jpg');
    await api().call('POST', `/v1/jobs/${dropped.id}/cancel`, { key: vendor.key });
    const stop = await api().startWorker();
    let job: any;
    try {
      await waitUntil(
        async () => {
          job = (await api().call('GET', `/queue/job/${id}`, { key: vendor.key })).body;
          return job.status === 'completed';
        },
        900_000,
        'the old job to complete',
      );
      expect((await api().call('GET', '/health')).body.worker).toEqual({ status: 'running' });
    } finally {
      await stop();
    }
    expect(job).toEqual({
      id,
      status: 'completed',
      type: 'batch',
      created_at: ISO,
      started_at: ISO,
      completed_at: ISO,
      progress: { total: 2, processed: 2, failed: 0 },
      model: 'u2netp',
      filenames: ['keep.jpg', 'drop.jpg'],
      results: [
        { filename: 'keep.jpg', status: 'completed', url: expect.stringMatching(/^\/v1\/blobs\//), error: null },
        { filename: 'drop.jpg', status: 'cancelled', url: null, error: null },
      ],
      error: null,
    });
    const png = await api().call('GET', job.results[0].url);
    expect([png.status, png.contentType]).toEqual([200, 'image/png']);
  }, 1_000_000);

  it("answers 404 for another vendor's job and refuses unknown models and missing files", async () => {
    const other = await api().vendor();
    const mine = await api().call('POST', '/queue/submit', {
      key: acme.key,
      form: imagesForm([{ bytes: photo, name: 'x.jpg' }]),
    });
    expectProblem(await api().call('GET', `/queue/job/${mine.body.job_id}`, { key: other.key }), 404, 'not_found');
    expectProblem(
      await api().call('POST', `/queue/job/${mine.body.job_id}/cancel`, { key: other.key }),
      404,
      'not_found',
    );
    expect((await api().call('GET', '/queue/jobs', { key: other.key })).body).toEqual({ total: 0, jobs: [] });
    expectProblem(
      await api().call('POST', '/queue/submit?model=sam', {
        key: acme.key,
        form: imagesForm([{ bytes: photo, name: 'x.jpg' }]),
      }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/queue/submit', { key: acme.key, form: new FormData() }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/queue/submit', { form: imagesForm([{ bytes: photo, name: 'x.jpg' }]) }),
      401,
      'unauthorized',
    );
  });
});

describeEachStore('compat: keyless old clients bound to PIXQ_COMPAT_ANONYMOUS_VENDOR', (target) => {
  // Only noop slots: the removals queued here would otherwise run (and count) while health is read.
  const api = useApi(target, {
    PIXQ_COMPAT_ANONYMOUS_VENDOR: 'legacy-shop',
    PIXQ_WORKER_CONCURRENCY: 'remove-background=0,noop=4',
  });

  it('act as that vendor, within its rate limits; a wrong key is still 401 and /v1 still needs a key', async () => {
    const photo = await jpeg(32, 32);
    const form = () => imagesForm([{ bytes: photo, name: 'k.jpg' }]);
    // Before the operator creates the vendor, keyless calls are refused.
    expectProblem(await api().call('POST', '/queue/submit', { form: form() }), 401, 'unauthorized');
    const legacy = await api().vendor('legacy-shop', { rateLimits: { bulk: { limit: 2, windowMs: 3_600_000 } } });
    const res = await api().call('POST', '/queue/submit', { form: form() });
    expect(res.body).toMatchObject({ status: 'queued', files_count: 1 });
    // The job belongs to legacy-shop: its key sees it, through /v1 and through the old route.
    expect(
      (await api().call('GET', `/v1/jobs?batchId=${res.body.job_id}`, { key: legacy.key })).body.jobs,
    ).toHaveLength(1);
    expect((await api().call('GET', `/queue/job/${res.body.job_id}`)).body.id).toBe(res.body.job_id);
    expect(res.headers.get('ratelimit-policy')).toContain('"bulk";q=2');
    expect((await api().call('POST', '/queue/submit', { form: form() })).status).toBe(200);
    const limited = await api().call('POST', '/queue/submit', { form: form() });
    expectProblem(limited, 429, 'rate_limited');
    expectProblem(
      await api().call('GET', `/queue/job/${res.body.job_id}`, { key: 'pixq_not-a-key' }),
      401,
      'unauthorized',
    );
    expectProblem(await api().call('GET', '/v1/jobs'), 401, 'unauthorized');
    // Another vendor's key is that vendor, not legacy-shop.
    const other = await api().vendor();
    expectProblem(await api().call('GET', `/queue/job/${res.body.job_id}`, { key: other.key }), 404, 'not_found');
    expect((await api().call('GET', '/v1/vendors/legacy-shop', { key: ADMIN_KEY })).body.name).toBe('legacy-shop');
  });

  it("answer keyless health with that vendor's running jobs, not every vendor's", async () => {
    const legacyKey = await keyOf(api(), 'legacy-shop');
    const other = await api().vendor();
    const long = { type: 'noop', options: { ms: 600_000 } };
    const stop = await api().startWorker();
    try {
      const theirs = (await api().call('POST', '/v1/jobs', { key: other.key, json: long })).body.id;
      const mine = (await api().call('POST', '/v1/jobs', { key: legacyKey, json: long })).body.id;
      await waitForJob(api(), other.key, theirs, ['running']);
      await waitForJob(api(), legacyKey, mine, ['running']);
      const health = (await api().call('GET', '/health')).body;
      expect(health).toEqual({
        status: 'healthy',
        worker: { status: 'running', active_jobs: 1, max_concurrent: expect.any(Number) },
      });
      const workerHealth = (await api().call('GET', '/api/worker/health')).body;
      expect(workerHealth).toMatchObject({ status: 'healthy', workers: 1, activeJobs: 1 });
      // A vendor's key sees its own count too.
      expect((await api().call('GET', '/api/worker/health', { key: other.key })).body.activeJobs).toBe(1);
      await api().call('POST', `/v1/jobs/${theirs}/cancel`, { key: other.key });
      await api().call('POST', `/v1/jobs/${mine}/cancel`, { key: legacyKey });
    } finally {
      await stop();
    }
  });
});

/** A new key of the vendor named `name`, created first if the store has none by that name. */
async function keyOf(api: ApiHarness, name: string): Promise<string> {
  const found = await api.call('GET', `/v1/vendors/${name}`, { key: ADMIN_KEY });
  if (found.status === 404) return (await api.vendor(name)).key;
  const res = await api.call('POST', `/v1/vendors/${found.body.id}/keys`, { key: ADMIN_KEY });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.apiKey;
}

describe('compat: PIXQ_COMPAT=none', () => {
  // One store is enough: which plugins are registered does not depend on it.
  describeEachStore('serves none of the old routes', (target) => {
    const api = useApi(target, { PIXQ_COMPAT: 'none' });
    it('answers 404 on them', async () => {
      for (const path of ['/queue/stats', '/api/image-queue/queue-stats', '/api/remove?url=x', '/health']) {
        expectProblem(await api().call('GET', path), 404, 'not_found');
      }
    });
  });
});

describeEachStore('compat: /queue/jobs reads', (target) => {
  const api = useApi(target);

  it('lists finished files with their result URLs from the list it read, reading no job again', async () => {
    const vendor = await api().vendor();
    const photo = await jpeg(48, 36);
    const files = ['a.jpg', 'b.jpg', 'c.jpg'].map((name) => ({ bytes: photo, name }));
    const res = await api().call('POST', '/queue/submit', { key: vendor.key, form: imagesForm(files) });
    expect(res.status).toBe(200);
    // Finished as a worker records them, without running the model: this API's store holds only these jobs.
    const { engine, blobs } = api().services;
    const ref = await blobs.put(photo, 'image/jpeg');
    const output = { blob: ref.key, contentType: 'image/jpeg', width: 48, height: 36, bytes: ref.bytes };
    const { jobs } = await claim(engine, 'test-worker', { 'remove-background': 10 });
    expect(jobs).toHaveLength(3);
    for (const job of jobs) expect(await succeed(engine, 'test-worker', job, { outputs: [output] })).toBe(true);

    const reads = vi.spyOn(engine.jobs, 'get');
    try {
      const listed = await api().call('GET', '/queue/jobs', { key: vendor.key });
      expect(listed.body.jobs[0].results).toEqual(
        files.map(({ name }) => ({
          filename: name,
          status: 'completed',
          url: expect.stringMatching(/^\/v1\/blobs\//),
          error: null,
        })),
      );
      expect(reads).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });
});
