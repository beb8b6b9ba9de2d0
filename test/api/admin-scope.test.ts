import { beforeAll, expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, imageForm, jpeg, openSse, useApi, waitForJob } from '../support/api.js';

/**
 * The admin key on the job routes: every vendor's jobs to list, read, download, cancel and retry, and every
 * vendor's events to follow; a retry it makes is paid from the job's vendor's budgets. (Vendor keys staying
 * within their own jobs: isolation.test.ts.)
 */
describeEachStore('admin scope on jobs and events', (target) => {
  // The bulk budget is small so the admin's retries can be seen spending the vendor's.
  const api = useApi(target, { PIXQ_RATE_BULK: '2/1h' });
  let a: { id: string; key: string };
  let b: { id: string; key: string };
  const jobs = { a: '', b: '', done: '' };

  beforeAll(async () => {
    a = await api().vendor();
    b = await api().vendor();
    jobs.a = (
      await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop', metadata: { owner: 'a' } } })
    ).body.id;
    jobs.b = (
      await api().call('POST', '/v1/jobs', { key: b.key, json: { type: 'noop', metadata: { owner: 'b' } } })
    ).body.id;
  });

  it("lists every vendor's jobs, or one vendor's with vendorId", async () => {
    const all = await api().call('GET', '/v1/jobs?limit=100', { key: ADMIN_KEY });
    expect(all.status).toBe(200);
    expect(all.body.jobs.map((j: { id: string }) => j.id)).toEqual(expect.arrayContaining([jobs.a, jobs.b]));
    const onlyB = await api().call('GET', `/v1/jobs?vendorId=${b.id}`, { key: ADMIN_KEY });
    expect(onlyB.body.jobs.map((j: { id: string }) => j.id)).toEqual([jobs.b]);
    // A vendor id that does not exist has no jobs (no error that would tell ids apart).
    expect((await api().call('GET', '/v1/jobs?vendorId=01NOSUCHVENDOR', { key: ADMIN_KEY })).body.jobs).toEqual([]);
  });

  it("reads any vendor's job and its output; an unknown id is 404", async () => {
    expect((await api().call('GET', `/v1/jobs/${jobs.b}`, { key: ADMIN_KEY })).body.id).toBe(jobs.b);
    expectProblem(await api().call('GET', '/v1/jobs/01NOSUCHJOB', { key: ADMIN_KEY }), 404, 'not_found');
    const upload = await api().call('POST', '/v1/uploads', {
      key: a.key,
      form: imageForm([{ bytes: await jpeg(40, 40) }]),
    });
    jobs.done = (
      await api().call('POST', '/v1/jobs', {
        key: a.key,
        json: { type: 'transform', input: { uploadId: upload.body.id }, options: { format: 'png' } },
      })
    ).body.id;
    const stop = await api().startWorker();
    try {
      await waitForJob(api(), ADMIN_KEY, jobs.done, ['succeeded']);
    } finally {
      await stop();
    }
    const output = await api().call('GET', `/v1/jobs/${jobs.done}/output`, { key: ADMIN_KEY });
    expect([output.status, output.contentType]).toEqual([200, 'image/png']);
  });

  it("cancels and retries any vendor's job; the retry spends that vendor's image budget", async () => {
    // The job of the first test has run (the worker of the output test took it): a new one.
    jobs.b = (await api().call('POST', '/v1/jobs', { key: b.key, json: { type: 'noop' } })).body.id;
    const cancelled = await api().call('POST', `/v1/jobs/${jobs.b}/cancel`, { key: ADMIN_KEY });
    expect(cancelled.body.state).toBe('cancelled');
    const remaining = (res: { headers: Headers }) =>
      Number(/"image";r=(\d+)/.exec(res.headers.get('ratelimit') ?? '')?.[1]);
    const retried = await api().call('POST', `/v1/jobs/${jobs.b}/retry`, { key: ADMIN_KEY });
    expect(retried.body.state).toBe('queued');
    const afterAdmin = remaining(retried);
    expect(afterAdmin).toBeGreaterThan(0);
    // B's own retry takes the next unit of the same budget: the admin's retry was counted against B.
    await api().call('POST', `/v1/jobs/${jobs.b}/cancel`, { key: b.key });
    const own = await api().call('POST', `/v1/jobs/${jobs.b}/retry`, { key: b.key });
    expect(remaining(own)).toBe(afterAdmin - 1);
  });

  it("cancels and retries on a filter across vendors, charging each vendor's bulk budget", async () => {
    const tagged = async (key: string) =>
      (await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', metadata: { wave: '1' } } })).body.id;
    const ids = [await tagged(a.key), await tagged(b.key)];
    const cancel = await api().call('POST', '/v1/jobs/cancel', { key: ADMIN_KEY, json: { metadata: ['wave=1'] } });
    expect(cancel.body).toEqual({ matched: 2, changed: 2, more: false });
    const onlyA = await api().call('POST', '/v1/jobs/retry', {
      key: ADMIN_KEY,
      json: { metadata: ['wave=1'], vendorId: a.id },
    });
    expect(onlyA.body).toEqual({ matched: 1, changed: 1, more: false });
    expect((await api().call('GET', `/v1/jobs/${ids[0]}`, { key: a.key })).body.state).toBe('queued');
    expect((await api().call('GET', `/v1/jobs/${ids[1]}`, { key: b.key })).body.state).toBe('cancelled');
    // A has spent one of its two bulk units through the admin; its own bulk retry spends the second.
    expect((await api().call('POST', '/v1/jobs/retry', { key: a.key, json: { state: 'failed' } })).status).toBe(200);
    await api().call('POST', `/v1/jobs/${ids[0]}/cancel`, { key: a.key });
    expectProblem(
      await api().call('POST', '/v1/jobs/retry', { key: ADMIN_KEY, json: { metadata: ['wave=1'] } }),
      429,
      'rate_limited',
    );
    expect((await api().call('GET', `/v1/jobs/${ids[1]}`, { key: b.key })).body.state).toBe('cancelled');
  });

  it("follows every vendor's events with the admin key, and one vendor's job by jobId", async () => {
    const all = await openSse(api(), '/v1/events', ADMIN_KEY);
    try {
      expect(all.status).toBe(200);
      const fromA = (await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } })).body.id;
      const fromB = (await api().call('POST', '/v1/jobs', { key: b.key, json: { type: 'noop' } })).body.id;
      await all.waitFor((e) => e.data.jobId === fromA, 10_000, "A's job");
      await all.waitFor((e) => e.data.jobId === fromB, 10_000, "B's job");
      const one = await openSse(api(), `/v1/events?jobId=${fromB}`, ADMIN_KEY, { 'last-event-id': '1' });
      try {
        await one.waitFor((e) => e.data.jobId === fromB, 10_000, "B's job replayed");
        expect(one.events.every((e) => e.data.jobId === fromB)).toBe(true);
      } finally {
        one.close();
      }
    } finally {
      all.close();
    }
    const missing = await openSse(api(), '/v1/events?jobId=01NOSUCHJOB', ADMIN_KEY);
    expect([missing.status, missing.body?.code]).toEqual([404, 'not_found']);
  });
});
