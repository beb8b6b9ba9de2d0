import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JobEventList, JobTypeList, JobView } from '../../src/api/schemas.js';
import { describeEachStore } from '../support/stores.js';
import {
  ADMIN_KEY,
  expectProblem,
  expectShape,
  imageForm,
  imageServer,
  jpeg,
  useApi,
  waitForJob,
} from '../support/api.js';

/** What the dashboard's job detail and upload pages read: the input image, the options, the stored events, the job types. */
describeEachStore('job detail routes', (target) => {
  const api = useApi(target, { PIXQ_URL_ALLOWLIST: '127.0.0.1' });
  let v: { id: string; key: string };
  let other: { id: string; key: string };
  let input: Buffer;
  let uploaded: string;
  let flaky: Awaited<ReturnType<typeof imageServer>>;
  let stopWorker: () => Promise<void>;

  beforeAll(async () => {
    v = await api().vendor();
    other = await api().vendor();
    input = await jpeg(40, 30);
    flaky = await imageServer(input, { failFirst: true });
    stopWorker = await api().startWorker();
    const res = await api().call('POST', '/v1/jobs', {
      key: v.key,
      form: imageForm([{ bytes: input }], { type: 'transform', options: JSON.stringify({ format: 'png' }) }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    uploaded = res.body.id;
    await waitForJob(api(), v.key, uploaded, ['succeeded']);
  });
  afterAll(async () => {
    await stopWorker?.();
    await flaky?.close();
  });

  describe('GET /v1/jobs/:id/input', () => {
    it("answers the uploaded bytes, typed by their content, to the job's vendor and the admin", async () => {
      for (const key of [v.key, ADMIN_KEY]) {
        const res = await api().call('GET', `/v1/jobs/${uploaded}/input`, { key });
        expect(res.status).toBe(200);
        expect(res.contentType).toBe('image/jpeg');
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.raw).toEqual(input);
      }
    });

    it('takes the type and length from the stored upload instead of reading the input to learn them', async () => {
      const read = vi.spyOn(api().services.blobs, 'get');
      try {
        const res = await api().call('GET', `/v1/jobs/${uploaded}/input`, { key: v.key });
        expect(res.status).toBe(200);
        expect(res.contentType).toBe('image/jpeg');
        expect(res.headers.get('content-length')).toBe(String(input.length));
        expect(res.raw).toEqual(input);
        expect(read).not.toHaveBeenCalled(); // streamed, not read whole and decoded
      } finally {
        read.mockRestore();
      }
    });

    it("is a 404 problem for another vendor's job, a job given by URL, and an input whose blob is gone", async () => {
      expectProblem(await api().call('GET', `/v1/jobs/${uploaded}/input`, { key: other.key }), 404, 'not_found');
      const byUrl = await api().call('POST', '/v1/jobs', {
        key: v.key,
        json: { type: 'transform', input: { url: flaky.url('/by-url.jpg') } },
      });
      expect(byUrl.status).toBe(202);
      expectProblem(await api().call('GET', `/v1/jobs/${byUrl.body.id}/input`, { key: v.key }), 404, 'not_found');

      const res = await api().call('POST', '/v1/jobs', {
        key: v.key,
        form: imageForm([{ bytes: await jpeg(20, 20) }], { type: 'transform' }),
      });
      const job = await waitForJob(api(), v.key, res.body.id, ['succeeded']);
      const row = await api().services.engine.jobs.get(job.id, v.id);
      await api().services.blobs.delete(row.inputBlob!);
      expectProblem(await api().call('GET', `/v1/jobs/${job.id}/input`, { key: v.key }), 404, 'not_found');
    });
  });

  it('shows the validated options in the job view', async () => {
    const res = await api().call('GET', `/v1/jobs/${uploaded}`, { key: v.key });
    expectShape(JobView, res.body);
    expect(res.body.options).toMatchObject({ format: 'png' });
  });

  describe('GET /v1/jobs/:id/events', () => {
    it("lists a job's stored events oldest first: a failed attempt (delayed, with its error), then the one that succeeded", async () => {
      const res = await api().call('POST', '/v1/jobs', {
        key: v.key,
        json: { type: 'transform', input: { url: flaky.url('/once.jpg') }, maxAttempts: 3 },
      });
      expect(res.status).toBe(202);
      const done = await waitForJob(api(), v.key, res.body.id, ['succeeded', 'failed']);
      expect(done.state).toBe('succeeded');
      expect(done.attempts).toBe(2);

      const page = await api().call('GET', `/v1/jobs/${done.id}/events`, { key: v.key });
      expect(page.status).toBe(200);
      expectShape(JobEventList, page.body);
      const events = page.body.events as {
        id: number;
        jobId: string;
        kind: string;
        state: string;
        attempts: number;
        error: { code: string } | null;
      }[];
      expect(events.every((e) => e.jobId === done.id)).toBe(true);
      expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
      const states = events.filter((e) => e.kind === 'state');
      // The delayed job is queued again before its second run (promoted once its backoff is over).
      expect(states.map((e) => e.state)).toEqual(['queued', 'running', 'delayed', 'queued', 'running', 'succeeded']);
      // The error stays on the job until it succeeds, so the events after the failure carry it too: the
      // failed attempt is the one that left `running` for `delayed`.
      expect(
        states
          .filter((e) => e.error && e.state === 'delayed')
          .map((e) => ({ attempts: e.attempts, state: e.state, code: e.error!.code })),
      ).toEqual([{ attempts: 1, state: 'delayed', code: 'url_fetch_failed' }]);
      expect(page.body.nextAfterId).toBeNull();

      // Paged: one at a time, following nextAfterId, gives the same events.
      const paged: number[] = [];
      let afterId = 0;
      for (;;) {
        const one = await api().call('GET', `/v1/jobs/${done.id}/events?limit=1&afterId=${afterId}`, { key: v.key });
        paged.push(...one.body.events.map((e: { id: number }) => e.id));
        if (one.body.nextAfterId === null) break;
        afterId = one.body.nextAfterId;
      }
      expect(paged).toEqual(events.map((e) => e.id));
      expect((await api().call('GET', `/v1/jobs/${done.id}/events`, { key: ADMIN_KEY })).body.events).toEqual(events);
    });

    it("is a 404 for another vendor's job and refuses an unbounded page", async () => {
      expectProblem(await api().call('GET', `/v1/jobs/${uploaded}/events`, { key: other.key }), 404, 'not_found');
      expectProblem(
        await api().call('GET', `/v1/jobs/${uploaded}/events?limit=501`, { key: v.key }),
        400,
        'validation_failed',
      );
      expectProblem(
        await api().call('GET', `/v1/jobs/${uploaded}/events?afterId=-1`, { key: v.key }),
        400,
        'validation_failed',
      );
    });
  });

  it('lets a vendor list the available job types, and only the admin their settings', async () => {
    const mine = await api().call('GET', '/v1/job-types', { key: v.key });
    expect(mine.status).toBe(200);
    expectShape(JobTypeList, mine.body);
    expect(mine.body.available).toEqual(expect.arrayContaining(['transform', 'remove-background', 'noop']));
    expect(mine.body.types).toBeUndefined();
    const all = await api().call('GET', '/v1/job-types', { key: ADMIN_KEY });
    expect(all.body).toEqual({ available: mine.body.available, types: expect.any(Array) });
    expectProblem(await api().call('GET', '/v1/job-types'), 401, 'unauthorized');
  });
});
