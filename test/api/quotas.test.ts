import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, imageForm, jpeg, startApi, useApi } from '../support/api.js';

/**
 * Budgets and quotas without holes: the backlog quota holds across API processes, a retry is a submission
 * (budgets, quota, suspension), a suspended vendor cannot upload, and an idempotent replay returns its job.
 */
const HOUR = 3_600_000;
const REQUESTS = 10;

describeEachStore('budgets and quotas', (target) => {
  const api = useApi(target);

  const suspend = (id: string) =>
    api().call('PATCH', `/v1/vendors/${id}`, { key: ADMIN_KEY, json: { status: 'suspended' } });

  /** A job of `body` submitted and cancelled at once (no worker runs here), so it can be retried. */
  async function cancelledJob(key: string, body: Record<string, unknown> = { type: 'noop' }) {
    const submitted = await api().call('POST', '/v1/jobs', { key, json: body });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect((await api().call('POST', `/v1/jobs/${submitted.body.id}/cancel`, { key })).body.state).toBe('cancelled');
    return submitted.body.id as string;
  }

  it('holds the backlog quota under concurrent bulk requests through two API instances', async () => {
    const second = await startApi(target, {}, { dataDir: api().dataDir, databaseUrl: api().databaseUrl });
    try {
      const { key } = await api().vendor(undefined, { maxQueued: 5 });
      // Parallel reads first, so both instances have open database connections: a request that had to
      // connect first would start behind the others, and they would not overlap.
      const servers = [api(), second];
      await Promise.all(servers.flatMap((s) => Array.from({ length: 10 }, () => s.call('GET', '/v1/jobs', { key }))));
      const bulk = { jobs: Array.from({ length: 5 }, () => ({ type: 'noop' })) };
      const answers = await Promise.all(
        Array.from({ length: REQUESTS }, (_, i) => servers[i % 2].call('POST', '/v1/jobs/bulk', { key, json: bulk })),
      );
      const accepted = answers.filter((a) => a.status === 202);
      for (const refused of answers.filter((a) => a.status !== 202)) expectProblem(refused, 429, 'quota_exceeded');
      expect(accepted).toHaveLength(1);
      expect((await api().call('GET', '/v1/jobs?state=queued&limit=100', { key })).body.jobs).toHaveLength(5);
    } finally {
      await second.close();
    }
  });

  it('spends the budgets of a submission on a retry, pipeline background removals included', async () => {
    const { key } = await api().vendor(undefined, { rateLimits: { removeBackground: { limit: 1, windowMs: HOUR } } });
    const upload = await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg() }]) });
    expect(upload.status).toBe(201);
    const id = await cancelledJob(key, {
      type: 'pipeline',
      input: { uploadId: upload.body.id },
      options: { steps: [{ type: 'remove-background' }, { type: 'transform', options: { resize: { width: 10 } } }] },
    });
    const retried = await api().call('POST', `/v1/jobs/${id}/retry`, { key });
    expectProblem(retried, 429, 'rate_limited');
    expect(retried.body.details.policy).toBe('remove-background');
    expect((await api().call('GET', `/v1/jobs/${id}`, { key })).body.state).toBe('cancelled');

    const image = await api().vendor(undefined, { rateLimits: { image: { limit: 1, windowMs: HOUR } } });
    const noop = await cancelledJob(image.key);
    const refused = await api().call('POST', `/v1/jobs/${noop}/retry`, { key: image.key });
    expectProblem(refused, 429, 'rate_limited');
    expect(refused.body.details.policy).toBe('image');
  });

  it('checks the backlog quota on a retry', async () => {
    const { key } = await api().vendor(undefined, { maxQueued: 1 });
    const id = await cancelledJob(key);
    expect((await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } })).status).toBe(202);
    expectProblem(await api().call('POST', `/v1/jobs/${id}/retry`, { key }), 429, 'quota_exceeded');
    expect((await api().call('GET', `/v1/jobs/${id}`, { key })).body.state).toBe('cancelled');
  });

  it('refuses a retry for a suspended vendor with 403 vendor_suspended', async () => {
    const { id: vendorId, key } = await api().vendor();
    const id = await cancelledJob(key);
    expect((await suspend(vendorId)).status).toBe(200);
    expectProblem(await api().call('POST', `/v1/jobs/${id}/retry`, { key }), 403, 'vendor_suspended');
    expect((await api().call('GET', `/v1/jobs/${id}`, { key })).body.state).toBe('cancelled');
  });

  it('refuses an upload from a suspended vendor with 403 vendor_suspended', async () => {
    const { id: vendorId, key } = await api().vendor();
    expect((await suspend(vendorId)).status).toBe(200);
    expectProblem(
      await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg() }]) }),
      403,
      'vendor_suspended',
    );
    const multipart = await api().call('POST', '/v1/jobs', {
      key,
      form: imageForm([{ bytes: await jpeg() }], { type: 'noop' }),
    });
    expectProblem(multipart, 403, 'vendor_suspended');
  });

  it('answers an idempotent replay at the quota with the existing job', async () => {
    const { key } = await api().vendor(undefined, { maxQueued: 1 });
    const headers = { 'idempotency-key': 'order-42' };
    const first = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' }, headers });
    expect(first.status).toBe(202);
    const replay = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' }, headers });
    expect({ status: replay.status, id: replay.body.id }).toEqual({ status: 202, id: first.body.id });
    // A new job is still refused.
    expectProblem(await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } }), 429, 'quota_exceeded');
  });
});
