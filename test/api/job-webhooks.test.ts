import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import {
  ADMIN_KEY,
  expectProblem,
  imageForm,
  jpeg,
  startApi,
  useApi,
  waitForJob,
  type ApiHarness,
} from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore } from '../support/stores.js';
import { WEBHOOK_TEST_ENV, webhookReceiver } from '../support/webhook-receiver.js';

type Receiver = Awaited<ReturnType<typeof webhookReceiver>>;

describeEachStore("webhooks: a job's own webhookUrl", (target) => {
  let api: ApiHarness;
  let receiver: Receiver;

  beforeAll(async () => {
    api = await startApi(target, WEBHOOK_TEST_ENV);
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
  });
  afterEach(async () => {
    await receiver?.close();
  });

  /** A vendor whose receiver trusts its callback secret (read through the API, which creates it). */
  async function hookedVendor() {
    const vendor = await api.vendor();
    const read = await api.call('GET', '/v1/webhooks/callback-secret', { key: vendor.key });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(read.body.previousSecretUntil).toBeNull();
    receiver = await webhookReceiver();
    receiver.trust(read.body.secret);
    return { ...vendor, secret: read.body.secret as string };
  }

  const submit = (key: string, json: Record<string, unknown>) =>
    api.call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 0 }, ...json } });
  const deliveriesOf = async (key: string, jobId: string) =>
    (await api.call('GET', `/v1/jobs/${jobId}/deliveries`, { key })).body.deliveries;

  it('reports a finished job to its URL, signed with the callback secret, beside the endpoint deliveries', async () => {
    const { key, secret } = await hookedVendor();
    // The vendor's endpoint gets the same event too: the job's callback is in addition to it.
    const endpoint = await api.call('POST', '/v1/webhooks', {
      key,
      json: { url: `${receiver.url}?endpoint`, events: ['job.succeeded'] },
    });
    receiver.trust(endpoint.body.secret);
    const job = await submit(key, { webhookUrl: receiver.url });
    expect(job.status, JSON.stringify(job.body)).toBe(202);
    expect(job.body.webhookUrl).toBe(receiver.url);
    await waitUntil(() => receiver.delivered().length === 2, 30_000, 'the callback and the endpoint delivery');
    const callback = receiver.delivered().find((r) => !r.id.startsWith(endpoint.body.endpoint.id))!;
    expect(callback.verifiedWith).toEqual([secret]);
    expect(callback.payload).toMatchObject({
      type: 'job.succeeded',
      data: { jobId: job.body.id, state: 'succeeded', type: 'noop', error: null, outputs: [] },
    });
    const viaEndpoint = receiver.delivered().find((r) => r !== callback)!;
    expect(Object.keys(callback.payload.data).sort()).toEqual(Object.keys(viaEndpoint.payload.data).sort());

    await waitUntil(
      async () => (await deliveriesOf(key, job.body.id)).every((d: { status: string }) => d.status === 'succeeded'),
      30_000,
      'both recorded',
    );
    const deliveries = await deliveriesOf(key, job.body.id);
    expect(deliveries.map((d: { endpointId: string | null }) => d.endpointId).sort()).toEqual(
      [endpoint.body.endpoint.id, null].sort(),
    );
    expect(deliveries.find((d: { endpointId: string | null }) => d.endpointId === null)).toMatchObject({
      id: callback.id,
      eventType: 'job.succeeded',
      attempts: 1,
      lastResponseStatus: 200,
    });
    expect((await api.call('GET', `/v1/jobs/${job.body.id}`, { key })).body.webhookUrl).toBe(receiver.url);
  }, 40_000);

  it('reports failed and cancelled jobs, and only their final state', async () => {
    const { key } = await hookedVendor();
    // Port 9 on loopback refuses the download: the job's one attempt fails.
    const failing = await api.call('POST', '/v1/jobs', {
      key,
      json: { type: 'transform', input: { url: 'http://127.0.0.1:9/a.jpg' }, maxAttempts: 1, webhookUrl: receiver.url },
    });
    expect(failing.status, JSON.stringify(failing.body)).toBe(202);
    const long = await submit(key, { options: { ms: 60_000 }, webhookUrl: receiver.url });
    await waitForJob(api, key, long.body.id, ['running']);
    await api.call('POST', `/v1/jobs/${long.body.id}/cancel`, { key });
    await waitUntil(() => receiver.delivered().length === 2, 30_000, 'two callbacks');
    const byJob = Object.fromEntries(receiver.delivered().map((r) => [r.payload.data.jobId, r.payload]));
    expect(byJob[failing.body.id]).toMatchObject({
      type: 'job.failed',
      data: { state: 'failed', error: { code: 'url_fetch_failed' } },
    });
    expect(byJob[long.body.id]).toMatchObject({ type: 'job.cancelled', data: { state: 'cancelled' } });
    // Nothing for queued or running: a later job's callback arrives after these, and nothing else did.
    await submit(key, { webhookUrl: receiver.url });
    await waitUntil(() => receiver.delivered().length === 3, 30_000, 'a third callback');
    expect(receiver.received).toHaveLength(3);
  }, 40_000);

  it('takes webhookUrl in bulk and multipart submissions', async () => {
    const { key } = await hookedVendor();
    const bulk = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [{ type: 'noop', webhookUrl: receiver.url }, { type: 'noop' }] },
    });
    expect(bulk.status, JSON.stringify(bulk.body)).toBe(202);
    const form = imageForm([{ bytes: await jpeg(40, 40) }], {
      type: 'transform',
      options: '{"format":"png"}',
      webhookUrl: receiver.url,
    });
    const multipart = await api.call('POST', '/v1/jobs', { key, form });
    expect(multipart.status, JSON.stringify(multipart.body)).toBe(202);
    expect(multipart.body.webhookUrl).toBe(receiver.url);
    await waitUntil(() => receiver.delivered().length === 2, 30_000, 'the bulk job and the multipart job');
    expect(new Set(receiver.delivered().map((r) => r.payload.data.jobId))).toEqual(
      new Set([bulk.body.jobIds[0], multipart.body.id]),
    );
    expect((await api.call('GET', `/v1/jobs/${bulk.body.jobIds[1]}`, { key })).body.webhookUrl).toBeNull();
  }, 40_000);

  it('retries a failing receiver on the schedule with the same webhook-id', async () => {
    const { key } = await hookedVendor();
    receiver.respondWith(() => ({ status: 503 }));
    const job = await submit(key, { webhookUrl: receiver.url });
    await waitUntil(
      () => receiver.received.filter((r) => r.answered === 503).length >= 2,
      30_000,
      'two failed attempts',
    );
    receiver.respondWith(() => ({ status: 204 }));
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'the delivery once the receiver is back');
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(1);
    await waitUntil(
      async () => (await deliveriesOf(key, job.body.id))[0].status === 'succeeded',
      30_000,
      'the success recorded',
    );
    const [delivery] = await deliveriesOf(key, job.body.id);
    expect(delivery.attempts).toBeGreaterThanOrEqual(3);
    expect(delivery.lastResponseStatus).toBe(204);
  }, 40_000);

  it('stops a delivery answered 410 and keeps sending other jobs to that URL', async () => {
    const { key } = await hookedVendor();
    receiver.respondWith(() => ({ status: 410 }));
    const gone = await submit(key, { webhookUrl: receiver.url });
    await waitUntil(
      async () => (await deliveriesOf(key, gone.body.id))[0]?.status === 'failed',
      30_000,
      'the delivery stopped',
    );
    expect((await deliveriesOf(key, gone.body.id))[0]).toMatchObject({
      attempts: 1,
      lastResponseStatus: 410,
      nextAttemptAt: null,
    });
    receiver.respondWith(() => ({ status: 200 }));
    const later = await submit(key, { webhookUrl: receiver.url });
    await waitUntil(() => receiver.delivered().length === 1, 30_000, "the later job's callback");
    expect(receiver.delivered()[0].payload.data.jobId).toBe(later.body.id);
    expect(receiver.received).toHaveLength(2);
  }, 40_000);

  it('signs with the old and the new callback secret after a rotation', async () => {
    const { key, secret } = await hookedVendor();
    const before = Date.now();
    const rotated = await api.call('POST', '/v1/webhooks/callback-secret/rotate', { key });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(secret);
    expect(Date.parse(rotated.body.previousSecretUntil) - before).toBeGreaterThanOrEqual(24 * 3_600_000 - 60_000);
    expect((await api.call('GET', '/v1/webhooks/callback-secret', { key })).body.secret).toBe(rotated.body.secret);
    receiver.trust(rotated.body.secret);
    await submit(key, { webhookUrl: receiver.url });
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'a callback after rotation');
    expect(receiver.delivered()[0].verifiedWith).toEqual([secret, rotated.body.secret]);
    expect(receiver.delivered()[0].signature.split(' ')).toHaveLength(2);
  }, 40_000);

  it("keeps each vendor's callback secret and deliveries its own", async () => {
    const owner = await hookedVendor();
    const other = await api.vendor();
    const otherSecret = (await api.call('GET', '/v1/webhooks/callback-secret', { key: other.key })).body.secret;
    expect(otherSecret).not.toBe(owner.secret);
    const job = await submit(owner.key, { webhookUrl: receiver.url });
    await waitUntil(() => receiver.delivered().length === 1, 30_000, 'the callback');
    expect(receiver.delivered()[0].verifiedWith).toEqual([owner.secret]);
    expect(await deliveriesOf(owner.key, job.body.id)).toHaveLength(1);
    expectProblem(await api.call('GET', `/v1/jobs/${job.body.id}/deliveries`, { key: other.key }), 404, 'not_found');
    expectProblem(await api.call('GET', '/v1/jobs/no-such-job/deliveries', { key: owner.key }), 404, 'not_found');
    // The admin key acts as no vendor: it has no callback secret to read.
    expectProblem(await api.call('GET', '/v1/webhooks/callback-secret', { key: ADMIN_KEY }), 403, 'forbidden');
    expectProblem(await api.call('GET', '/v1/webhooks/callback-secret'), 401, 'unauthorized');
  }, 40_000);

  it('refuses bad URLs at submission with stable codes', async () => {
    const { key } = await api.vendor();
    for (const webhookUrl of [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest',
      'ftp://127.0.0.1/hook',
      'http://user:pw@127.0.0.1/',
      'not a url',
    ]) {
      expectProblem(await submit(key, { webhookUrl }), 400, 'url_not_allowed');
    }
    expectProblem(await submit(key, { webhookUrl: `http://127.0.0.1/${'x'.repeat(2048)}` }), 400, 'validation_failed');
    const bulk = await api.call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [{ type: 'noop' }, { type: 'noop', webhookUrl: 'http://10.0.0.1/' }] },
    });
    expectProblem(bulk, 400, 'url_not_allowed');
    expect(bulk.body.detail).toMatch(/^jobs\[1\]: /);
    expect((await api.call('GET', '/v1/jobs', { key })).body.jobs).toEqual([]);
  });
});

describeEachStore("webhooks: a job's webhookUrl without the allowlist", (target) => {
  const api = useApi(target);

  it('refuses a loopback or private URL in every kind of submission', async () => {
    const { key } = await api().vendor();
    for (const webhookUrl of ['http://127.0.0.1:8080/hook', 'http://[::1]/hook', 'http://192.168.1.10/hook']) {
      expectProblem(
        await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', webhookUrl } }),
        400,
        'url_not_allowed',
      );
      expectProblem(
        await api().call('POST', '/v1/jobs/bulk', { key, json: { jobs: [{ type: 'noop', webhookUrl }] } }),
        400,
        'url_not_allowed',
      );
      const form = imageForm([{ bytes: await jpeg(40, 40) }], { type: 'transform', webhookUrl });
      expectProblem(await api().call('POST', '/v1/jobs', { key, form }), 400, 'url_not_allowed');
    }
    expect((await api().call('GET', '/v1/jobs', { key })).body.jobs).toEqual([]);
  });
});
