import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApi, expectProblem, waitForJob, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';
import {
  FAST_WEBHOOK_SCHEDULE as FAST_SCHEDULE,
  WEBHOOK_TEST_ENV as ENV,
  webhookReceiver,
} from '../support/webhook-receiver.js';
import { nextAttemptDelay } from '../../src/engine/webhooks.js';
import { retryAfterMs } from '../../src/worker/webhook-deliverer.js';

type Receiver = Awaited<ReturnType<typeof webhookReceiver>>;

describeEachStore('webhooks', (target) => {
  let api: ApiHarness;
  let receiver: Receiver;

  beforeAll(async () => {
    api = await startApi(target, ENV);
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
  });
  afterEach(async () => {
    await receiver?.close();
  });

  async function endpointFor(key: string, events?: string[]) {
    receiver = await webhookReceiver();
    const res = await api.call('POST', '/v1/webhooks', { key, json: { url: receiver.url, ...(events && { events }) } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    receiver.trust(res.body.secret);
    return res.body.endpoint as { id: string };
  }

  async function submitNoops(key: string, count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let done = 0; done < count; done += 100) {
      const jobs = Array.from({ length: Math.min(100, count - done) }, () => ({ type: 'noop', options: { ms: 0 } }));
      const res = await api.call('POST', '/v1/jobs/bulk', { key, json: { jobs } });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      ids.push(...res.body.jobIds);
    }
    return ids;
  }

  it('delivers every finished job once, signed so that standardwebhooks verifies it', async () => {
    const { key } = await api.vendor();
    await endpointFor(key, ['job.succeeded']);
    const ids = await submitNoops(key, 200);
    await waitUntil(
      () => new Set(receiver.delivered().map((r) => r.payload.data.jobId)).size === 200,
      60_000,
      '200 deliveries',
    );
    const delivered = receiver.delivered();
    expect(delivered.every((r) => r.verifiedWith.length === 1)).toBe(true);
    expect(new Set(delivered.map((r) => r.id)).size).toBe(delivered.length);
    expect(new Set(delivered.map((r) => r.payload.data.jobId))).toEqual(new Set(ids));
    const first = delivered[0].payload;
    expect(first).toMatchObject({ type: 'job.succeeded', data: { state: 'succeeded', type: 'noop', error: null } });
    expect(Math.abs(delivered[0].timestamp * 1000 - delivered[0].at)).toBeLessThan(5 * 60_000);
    expect(Buffer.byteLength(delivered[0].body)).toBeLessThan(20 * 1024);
  }, 90_000);

  it('keeps retrying while the receiver is down and delivers everything once it is back', async () => {
    const { key } = await api.vendor();
    const endpoint = await endpointFor(key, ['job.succeeded']);
    receiver.respondWith(() => ({ status: 503 }));
    const ids = await submitNoops(key, 5);
    // Down until every delivery has failed at least twice, whatever the machine's speed.
    const failures = (jobId: string) =>
      receiver.received.filter((r) => r.payload.data.jobId === jobId && r.answered === 503).length;
    await waitUntil(() => ids.every((id) => failures(id) >= 2), 30_000, 'two failed attempts per delivery');
    receiver.respondWith(() => ({ status: 204 }));
    await waitUntil(
      () => new Set(receiver.delivered().map((r) => r.payload.data.jobId)).size === 5,
      30_000,
      'late deliveries',
    );
    for (const id of ids) {
      const attempts = receiver.received.filter((r) => r.payload.data.jobId === id);
      // Every retry of one delivery carries the same webhook-id, so a receiver can drop duplicates.
      expect(new Set(attempts.map((r) => r.id)).size).toBe(1);
    }
    const list = await api.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, { key });
    expect(list.body.deliveries).toHaveLength(5);
    for (const d of list.body.deliveries) expect(d).toMatchObject({ status: 'succeeded', lastResponseStatus: 204 });
    expect(list.body.deliveries.every((d: { attempts: number }) => d.attempts >= 3)).toBe(true);
  }, 60_000);

  it('honours Retry-After on a 429', async () => {
    const { key } = await api.vendor();
    await endpointFor(key, ['job.succeeded']);
    let answered429 = false;
    receiver.respondWith(() => {
      if (answered429) return { status: 200 };
      answered429 = true;
      return { status: 429, headers: { 'retry-after': '1' } };
    });
    await submitNoops(key, 1);
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'the delivery after Retry-After');
    const [refused, accepted] = receiver.received;
    expect(refused.answered).toBe(429);
    expect(accepted.at - refused.at).toBeGreaterThanOrEqual(1000);
  }, 40_000);

  it('disables an endpoint that answers 410 and says why', async () => {
    const { key } = await api.vendor();
    const endpoint = await endpointFor(key, ['job.succeeded']);
    receiver.respondWith(() => ({ status: 410 }));
    await submitNoops(key, 1);
    await waitUntil(
      async () => (await api.call('GET', `/v1/webhooks/${endpoint.id}`, { key })).body.status === 'disabled',
      30_000,
      'the endpoint disabled',
    );
    const read = await api.call('GET', `/v1/webhooks/${endpoint.id}`, { key });
    expect(read.body.disabledReason).toMatch(/410/);
    expect(receiver.received).toHaveLength(1);
    const deliveries = await api.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, { key });
    expect(deliveries.body.deliveries[0]).toMatchObject({ status: 'failed', lastResponseStatus: 410, attempts: 1 });
    // A disabled endpoint gets nothing more; a job finished now leaves no delivery for it.
    const [later] = await submitNoops(key, 1);
    await waitForJob(api, key, later, ['succeeded']);
    expect((await api.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, { key })).body.deliveries).toHaveLength(1);
  }, 40_000);

  it('signs with the old and the new secret after a rotation', async () => {
    const { key } = await api.vendor();
    const endpoint = await endpointFor(key, ['job.succeeded']);
    const rotated = await api.call('POST', `/v1/webhooks/${endpoint.id}/rotate-secret`, { key });
    expect(rotated.status).toBe(200);
    receiver.trust(rotated.body.secret);
    await submitNoops(key, 1);
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'a delivery after rotation');
    // Verified with both: the receiver trusts the first secret (from registration) and the rotated one.
    expect(receiver.delivered()[0].verifiedWith).toHaveLength(2);
    expect(receiver.delivered()[0].signature.split(' ')).toHaveLength(2);
  }, 40_000);

  it('reports a finished batch once, with its counts', async () => {
    const { key } = await api.vendor();
    await endpointFor(key, ['batch.completed']);
    const res = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [1, 2, 3].map(() => ({ type: 'noop', options: { ms: 0 } })) },
    });
    expect(res.status).toBe(202);
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'batch.completed');
    expect(receiver.delivered()[0].payload).toMatchObject({
      type: 'batch.completed',
      data: { batchId: res.body.batchId, total: 3, counts: { succeeded: 3 }, percent: 100 },
    });
    // A sweep of recently finished batches (for transactions that could not see each other) adds nothing more.
    await api.services.engine.webhooks.sweepCompletedBatches(60_000);
    const deliveries = await api.services.engine.store.db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('batch_id', '=', res.body.batchId)
      .execute();
    expect(deliveries).toHaveLength(1);
  }, 40_000);

  it('refuses private and metadata targets at registration', async () => {
    const { key } = await api.vendor();
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/hook',
      'ftp://127.0.0.1/hook',
      'http://user:pw@127.0.0.1/',
    ]) {
      const res = await api.call('POST', '/v1/webhooks', { key, json: { url } });
      expectProblem(res, 400, 'url_not_allowed');
    }
    const bad = await api.call('POST', '/v1/webhooks', {
      key,
      json: { url: 'http://127.0.0.1/', events: ['job.exploded'] },
    });
    expectProblem(bad, 400, 'validation_failed');
  });

  it("never shows or touches another vendor's endpoints", async () => {
    const owner = await api.vendor();
    const other = await api.vendor();
    const endpoint = await endpointFor(owner.key);
    const paths: [string, string][] = [
      ['GET', `/v1/webhooks/${endpoint.id}`],
      ['PATCH', `/v1/webhooks/${endpoint.id}`],
      ['DELETE', `/v1/webhooks/${endpoint.id}`],
      ['POST', `/v1/webhooks/${endpoint.id}/rotate-secret`],
      ['GET', `/v1/webhooks/${endpoint.id}/deliveries`],
      ['POST', `/v1/webhooks/${endpoint.id}/deliveries/x.1/replay`],
    ];
    for (const [method, path] of paths) {
      const res = await api.call(method, path, {
        key: other.key,
        ...(method === 'PATCH' && { json: { description: 'mine now' } }),
      });
      expectProblem(res, 404, 'not_found');
    }
    expect((await api.call('GET', '/v1/webhooks', { key: other.key })).body.webhooks).toEqual([]);
    expect((await api.call('GET', '/v1/webhooks', { key: owner.key })).body.webhooks).toHaveLength(1);
    expectProblem(await api.call('GET', '/v1/webhooks'), 401, 'unauthorized');
  });

  it('caps the endpoints one vendor may register (PIXQ_WEBHOOK_MAX_ENDPOINTS, 20 by default)', async () => {
    const { key } = await api.vendor();
    const other = await api.vendor();
    const register = (k: string, i: number) =>
      api.call('POST', '/v1/webhooks', { key: k, json: { url: `http://127.0.0.1:9/hook/${i}` } });
    const made = [];
    for (let i = 0; i < 20; i++) {
      const res = await register(key, i);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      made.push(res.body.endpoint.id);
    }
    const refused = await register(key, 20);
    expectProblem(refused, 409, 'too_many_webhooks');
    expect(refused.body.details).toMatchObject({ limit: 20 });
    // Another vendor's endpoints are its own count; deleting one makes room again.
    expect((await register(other.key, 0)).status).toBe(201);
    expect((await api.call('DELETE', `/v1/webhooks/${made[0]}`, { key })).status).toBe(204);
    expect((await register(key, 21)).status).toBe(201);
  });

  it('replays a delivery on request', async () => {
    const { key } = await api.vendor();
    const endpoint = await endpointFor(key, ['job.succeeded']);
    await submitNoops(key, 1);
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'the first delivery');
    const [delivery] = (await api.call('GET', `/v1/webhooks/${endpoint.id}/deliveries`, { key })).body.deliveries;
    const replay = await api.call('POST', `/v1/webhooks/${endpoint.id}/deliveries/${delivery.id}/replay`, { key });
    expect(replay.status).toBe(202);
    await waitUntil(() => receiver.delivered().length === 2, 30_000, 'the replayed delivery');
    expect(receiver.delivered().map((r) => r.id)).toEqual([delivery.id, delivery.id]);
  }, 40_000);
});

describeEachStore('webhooks: SSRF at delivery', (target) => {
  let registrar: ApiHarness;
  let deliverer: ApiHarness;

  beforeAll(async () => {
    // One process allowed loopback when the endpoint was registered; the delivering process is not.
    registrar = await startApi(target, ENV);
    deliverer = await startApi(
      target,
      { PIXQ_WEBHOOK_RETRY_SCHEDULE: FAST_SCHEDULE },
      { dataDir: registrar.dataDir, databaseUrl: registrar.databaseUrl },
    );
  });
  afterAll(async () => {
    await deliverer?.close();
    await registrar?.close();
  });

  it('re-checks the target at every delivery and refuses a private one', async () => {
    const receiver = await webhookReceiver();
    try {
      const { key } = await registrar.vendor();
      const created = await registrar.call('POST', '/v1/webhooks', {
        key,
        json: { url: receiver.url, events: ['job.succeeded'] },
      });
      expect(created.status).toBe(201);
      const job = await registrar.call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 0 } } });
      await deliverer.startWorker();
      await waitForJob(deliverer, key, job.body.id, ['succeeded']);
      const deliveries = async () =>
        (await registrar.call('GET', `/v1/webhooks/${created.body.endpoint.id}/deliveries`, { key })).body.deliveries;
      await waitUntil(async () => (await deliveries())[0]?.status === 'failed', 30_000, 'the delivery refused');
      expect((await deliveries())[0].lastError).toMatch(/loopback/);
      expect(receiver.received).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  }, 40_000);
});

describe('webhook retry rules', () => {
  const schedule = [0, 5_000, 300_000];

  it('follows the schedule with at most 10% jitter, then stops', () => {
    expect(nextAttemptDelay(0, schedule, 0, () => 0.99)).toBe(0);
    expect(nextAttemptDelay(1, schedule, 0, () => 0)).toBe(5_000);
    expect(nextAttemptDelay(1, schedule, 0, () => 0.999)).toBeLessThanOrEqual(5_500);
    expect(nextAttemptDelay(3, schedule)).toBeNull();
  });

  it('waits at least as long as Retry-After asks', () => {
    expect(nextAttemptDelay(1, schedule, 60_000, () => 0)).toBe(60_000);
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs(new Date(Date.now() + 30_000).toUTCString())).toBeGreaterThan(28_000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
