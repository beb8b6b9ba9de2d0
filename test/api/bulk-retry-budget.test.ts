import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, useApi } from '../support/api.js';

/**
 * A bulk retry queues jobs again: like a submission of those jobs it spends one `image` unit per job (and the
 * background-removal budget), and like a bulk submission it takes at most PIXQ_MAX_BULK_FILES jobs per call.
 * Issue 20's repro: with the image budget spent, `POST /v1/jobs/retry {}` still queued every cancelled job.
 */
const MAX_BULK = 4;

describeEachStore('bulk retry budgets', (target) => {
  const api = useApi(target, { PIXQ_RATE_IMAGE: '3/1h', PIXQ_MAX_BULK_FILES: String(MAX_BULK) });

  /** `n` cancelled jobs of the vendor, made through the engine so that no budget is spent on them. */
  async function cancelledJobs(vendorId: string, n: number, spec: Record<string, unknown> = { type: 'noop' }) {
    const { engine } = api().services;
    const { jobs } = await engine.jobs.enqueue(
      vendorId,
      Array.from({ length: n }, () => ({ type: 'noop', ...spec })),
    );
    for (const job of jobs) await engine.jobs.cancel(job.id, vendorId);
    return jobs.map((j) => j.id);
  }
  const remaining = (res: { headers: Headers }, budget: string) =>
    Number(new RegExp(`"${budget}";r=(\\d+)`).exec(res.headers.get('ratelimit') ?? '')?.[1]);

  it('spends one image unit per job, and refuses (changing nothing) a retry the image budget cannot pay', async () => {
    const v = await api().vendor();
    await cancelledJobs(v.id, 3);
    // Three jobs, three units: the whole budget.
    const retried = await api().call('POST', '/v1/jobs/retry', { key: v.key, json: {} });
    expect(retried.status, JSON.stringify(retried.body)).toBe(200);
    expect(retried.body).toEqual({ matched: 3, changed: 3, more: false });
    expect(remaining(retried, 'image')).toBe(0);

    await api().call('POST', '/v1/jobs/cancel', { key: v.key, json: {} });
    const refused = await api().call('POST', '/v1/jobs/retry', { key: v.key, json: {} });
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.body.details.policy).toBe('image');
    const { count } = (await api().call('GET', '/v1/jobs/count?state=cancelled', { key: v.key })).body;
    expect(count).toBe(3);
  });

  it("charges each vendor's image budget when the admin retries their jobs", async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    const wave = { type: 'noop', metadata: { wave: 'admin' } };
    await cancelledJobs(a.id, 2, wave);
    await cancelledJobs(b.id, 2, wave);
    const retried = await api().call('POST', '/v1/jobs/retry', { key: ADMIN_KEY, json: { metadata: ['wave=admin'] } });
    expect(retried.body).toMatchObject({ changed: 4 });
    // Each vendor has one unit left of its three.
    const own = await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } });
    expect(remaining(own, 'image')).toBe(0);
  });

  it('takes at most PIXQ_MAX_BULK_FILES jobs per call and says that more remain', async () => {
    const v = await api().vendor(undefined, { rateLimits: { image: { limit: 100, windowMs: 3_600_000 } } });
    await cancelledJobs(v.id, MAX_BULK + 2);
    const first = await api().call('POST', '/v1/jobs/retry', { key: v.key, json: {} });
    expect(first.body).toEqual({ matched: MAX_BULK, changed: MAX_BULK, more: true });
    expect(remaining(first, 'image')).toBe(100 - MAX_BULK);
    const second = await api().call('POST', '/v1/jobs/retry', { key: v.key, json: {} });
    expect(second.body).toEqual({ matched: 2, changed: 2, more: false });
  });
});
