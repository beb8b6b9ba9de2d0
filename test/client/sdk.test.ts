import { PixqApiError, PixqClient, type JobEvent } from '@pixq/client';
import { describe, expect, it } from 'vitest';
import { JobView, UploadView } from '../../src/api/schemas.js';
import { loadConfig } from '../../src/config.js';
import { openServices } from '../../src/services.js';
import { expectShape, jpeg, startApi, testEnv, useApi, type ApiHarness } from '../support/api.js';
import { waitUntil } from '../support/processes.js';
import { describeEachStore, sqliteTarget } from '../support/stores.js';

/** Event-stream subscriptions open on the API's bus: a stream counts once the server holds it. */
const streams = (api: ApiHarness) =>
  (api.services.engine.bus as unknown as { emitter: { listenerCount(e: string): number } }).emitter.listenerCount(
    'event',
  );

/** The SDK against a real pixq on loopback: every call goes over HTTP to the real routes and store. */
describeEachStore('PixqClient', (target) => {
  const api = useApi(target);
  const client = async () => {
    const { key } = await api().vendor();
    return new PixqClient({ baseUrl: api().base, apiKey: key });
  };

  it('submits JSON and multipart jobs, uploads, reads, cancels, retries and downloads', async () => {
    const pixq = await client();
    const photo = await jpeg(80, 60);
    const upload = await pixq.upload({ bytes: photo, name: 'a.jpg', type: 'image/jpeg' });
    expectShape(UploadView, upload);
    expect(upload).toMatchObject({ width: 80, height: 60, contentType: 'image/jpeg' });

    const byUpload = await pixq.submit({
      type: 'transform',
      input: { uploadId: upload.id },
      options: { format: 'png' },
      metadata: { sku: 'p1' },
    });
    expectShape(JobView, byUpload);
    expect(byUpload).toMatchObject({ state: 'queued', type: 'transform', metadata: { sku: 'p1' } });
    const again = await pixq.submit({ type: 'noop', idempotencyKey: 'same-key' });
    expect((await pixq.submit({ type: 'noop', idempotencyKey: 'same-key' })).id).toBe(again.id);
    const byFile = await pixq.submit({
      type: 'transform',
      file: new Blob([photo], { type: 'image/jpeg' }),
      options: { resize: { width: 40 } },
    });
    expect((await pixq.job(byFile.id)).id).toBe(byFile.id);

    const cancelled = await pixq.cancel(again.id);
    expect(cancelled.state).toBe('cancelled');
    expect((await pixq.retry(again.id)).state).toBe('queued');

    const stop = await api().startWorker();
    try {
      const done = await pixq.wait(byFile.id, { timeoutMs: 30_000 });
      expect(done).toMatchObject({
        state: 'succeeded',
        outputs: [{ contentType: 'image/jpeg', width: 40, height: 30 }],
      });
      const first = await pixq.download(byFile.id);
      expect(first.type).toBe('image/jpeg');
      expect(first.size).toBe(done.outputs[0].bytes);
      const converted = await pixq.wait(byUpload.id, { timeoutMs: 30_000 });
      expect(converted.outputs[0].contentType).toBe('image/png');
      const viaSignedUrl = await pixq.download(byUpload.id, 0);
      expect(
        Buffer.from(await viaSignedUrl.arrayBuffer())
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    } finally {
      await stop();
    }
  });

  it('submits bulk specs and bulk files, lists every page, follows a batch to its end, reads stats and limits', async () => {
    const pixq = await client();
    const specs = await pixq.submitBulk([{ type: 'noop' }, { type: 'noop' }, { type: 'noop' }]);
    expect(specs.count).toBe(3);
    const photo = await jpeg();
    const files = await pixq.submitBulk({
      files: [
        { bytes: photo, name: 'x.jpg' },
        { bytes: photo, name: 'y.jpg' },
      ],
      type: 'transform',
      options: { format: 'webp' },
    });
    expect(files.count).toBe(2);

    const listed = [];
    for await (const job of pixq.jobs({ limit: 2 })) listed.push(job.id);
    expect(listed.sort()).toEqual([...specs.jobIds, ...files.jobIds].sort());
    const inBatch = [];
    for await (const job of pixq.jobs({ batchId: files.batchId, limit: 1 })) inBatch.push(job.id);
    expect(inBatch.sort()).toEqual([...files.jobIds].sort());

    const seen: number[] = [];
    const stop = await api().startWorker();
    try {
      const batch = await pixq.waitBatch(files.batchId, { timeoutMs: 30_000, onProgress: (b) => seen.push(b.percent) });
      expect(batch).toMatchObject({ id: files.batchId, total: 2, counts: { succeeded: 2 }, percent: 100 });
      expect(seen.length).toBeGreaterThan(0);
      await pixq.waitBatch(specs.batchId, { timeoutMs: 30_000 });
    } finally {
      await stop();
    }
    const stats = await pixq.stats();
    expect(JSON.stringify(stats)).toContain('noop');
    const me = await pixq.me();
    expect(me.limits).toEqual({ maxBulkFiles: api().config.maxBulkFiles, maxUploadBytes: api().config.maxUploadBytes });
  });

  it('iterates live events of one job until the loop breaks, and resumes after a given event id', async () => {
    const pixq = await client();
    const job = await pixq.submit({ type: 'noop', options: { ms: 50 } });
    const states: JobEvent[] = [];
    const before = streams(api());
    const reading = (async () => {
      for await (const event of pixq.events({ jobId: job.id })) {
        states.push(event);
        if (event.state === 'succeeded') break;
      }
    })();
    await waitUntil(() => streams(api()) > before, 20_000, 'the event stream to open');
    const stop = await api().startWorker();
    try {
      await reading;
    } finally {
      await stop();
    }
    expect(states.map((e) => e.state)).toContain('running');
    expect(states.every((e) => e.jobId === job.id)).toBe(true);
    // A new iterator told where the old one was gets only what came after.
    const resumed: JobEvent[] = [];
    const controller = new AbortController();
    const firstId = states[0].id;
    for await (const event of pixq.events({ jobId: job.id }, { lastEventId: firstId, signal: controller.signal })) {
      resumed.push(event);
      if (event.state === 'succeeded') controller.abort();
    }
    expect(resumed.map((e) => e.id)).toEqual(states.slice(1).map((e) => e.id));
  });

  it('answers refusals as PixqApiError with code, status and problem', async () => {
    const pixq = await client();
    const missing = await pixq.job('01NOPE').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PixqApiError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found', retryAfter: undefined });
    const anonymous = new PixqClient({ baseUrl: api().base, apiKey: 'pixq_not-a-key' });
    await expect(anonymous.stats()).rejects.toMatchObject({ name: 'PixqApiError', status: 401, code: 'unauthorized' });
    await expect(pixq.submit({ type: 'no-such-type' })).rejects.toMatchObject({
      status: 400,
      code: 'unknown_job_type',
    });
    await expect(pixq.wait('01NOPE', { timeoutMs: 10_000 })).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it("passes a job's webhookUrl through, reads and rotates the callback secret, and lists a job's deliveries", async () => {
    const pixq = await client();
    // A public address: no worker runs in this test, so nothing is sent to it.
    const webhookUrl = 'https://93.184.215.14/hook';
    const json = await pixq.submit({ type: 'noop', webhookUrl });
    expect(json.webhookUrl).toBe(webhookUrl);
    const multipart = await pixq.submit({
      type: 'transform',
      file: new Blob([await jpeg(20, 20)], { type: 'image/jpeg' }),
      webhookUrl,
    });
    expect(multipart.webhookUrl).toBe(webhookUrl);
    const bulk = await pixq.submitBulk({
      type: 'transform',
      files: [{ bytes: await jpeg(20, 20), name: 'a.jpg' }],
      webhookUrl,
    });
    expect((await pixq.job(bulk.jobIds[0])).webhookUrl).toBe(webhookUrl);
    await expect(pixq.submit({ type: 'noop', webhookUrl: 'http://127.0.0.1/' })).rejects.toMatchObject({
      status: 400,
      code: 'url_not_allowed',
    });

    const secret = await pixq.callbackSecret();
    expect(secret).toMatchObject({ secret: expect.stringMatching(/^whsec_/), previousSecretUntil: null });
    const rotated = await pixq.rotateCallbackSecret();
    expect(rotated.secret).not.toBe(secret.secret);
    expect(Date.parse(rotated.previousSecretUntil!)).toBeGreaterThan(Date.now());
    expect((await pixq.callbackSecret()).secret).toBe(rotated.secret);

    // Cancelling the queued job is its final state: its callback is written with it.
    await pixq.cancel(json.id);
    const { deliveries } = await pixq.jobDeliveries(json.id);
    expect(deliveries).toEqual([
      expect.objectContaining({ endpointId: null, eventType: 'job.cancelled', jobId: json.id, status: 'pending' }),
    ]);
  });

  it('does not see another vendor’s job through any call', async () => {
    const owner = await client();
    const other = await client();
    const job = await owner.submit({ type: 'noop' });
    for (const call of [
      () => other.job(job.id),
      () => other.cancel(job.id),
      () => other.download(job.id),
      () => other.wait(job.id),
      () => other.jobDeliveries(job.id),
      () => other.jobEvents(job.id),
      () => other.jobInput(job.id),
    ]) {
      await expect(call()).rejects.toMatchObject({ status: 404, code: 'not_found' });
    }
    const listed = [];
    for await (const j of other.jobs()) listed.push(j.id);
    expect(listed).not.toContain(job.id);
    // The owner reads the job's stored events; a job without an input image has none to give.
    expect((await owner.jobEvents(job.id)).events).toEqual([
      expect.objectContaining({ jobId: job.id, kind: 'state', state: 'queued' }),
    ]);
    await expect(owner.jobInput(job.id)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect((await owner.jobTypes()).available).toContain('noop');
  });
});

describe('PixqClient rate limits', () => {
  const api = useApi(sqliteTarget, { PIXQ_RATE_REQUESTS: '3/1s' });

  it('gives a 429 with retryAfter, and with retry opted in waits it out and succeeds', async () => {
    const { key } = await api().vendor();
    const plain = new PixqClient({ baseUrl: api().base, apiKey: key });
    let refusal: unknown;
    for (let i = 0; i < 50 && !refusal; i++)
      refusal = await plain.stats().then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refusal).toBeInstanceOf(PixqApiError);
    expect(refusal).toMatchObject({ status: 429, code: 'rate_limited', retryAfter: expect.any(Number) });

    const retries: string[] = [];
    const patient = new PixqClient({
      baseUrl: api().base,
      apiKey: key,
      retry: { onRetry: ({ error }) => retries.push(error.code) },
    });
    for (let i = 0; i < 50 && retries.length === 0; i++) await patient.stats();
    expect(retries[0]).toBe('rate_limited');
  });
});

describe('PixqClient.wait when events are blocked or the server restarts', () => {
  it('falls back to polling when something in the way refuses the event stream', async () => {
    const api = await startApi(sqliteTarget);
    try {
      const { key } = await api.vendor();
      let refused = 0;
      // What a corporate proxy does to /v1/events: an HTML page instead of the stream; the rest passes.
      const blocking: typeof fetch = async (input, init) => {
        if (String(input).includes('/v1/events')) {
          refused++;
          return new Response('<html>blocked by policy</html>', {
            status: 403,
            headers: { 'content-type': 'text/html' },
          });
        }
        return fetch(input, init);
      };
      const pixq = new PixqClient({ baseUrl: api.base, apiKey: key, fetch: blocking, pollIntervalMs: 50 });
      const job = await pixq.submit({ type: 'noop', options: { ms: 20 } });
      const events: JobEvent[] = [];
      const waiting = pixq.wait(job.id, { timeoutMs: 30_000, onEvent: (e) => events.push(e) });
      await waitUntil(() => refused >= 2, 20_000, 'the client to try the stream twice');
      await api.startWorker();
      expect(await waiting).toMatchObject({ id: job.id, state: 'succeeded' });
      expect(events).toEqual([]);
    } finally {
      await api.close();
    }
  });

  it('resumes by Last-Event-ID across a restart and gets what happened while the server was down', async () => {
    const location = await sqliteTarget.fresh();
    const env = { PIXQ_LEASE_MS: '1000' };
    let api: ApiHarness = await startApi(sqliteTarget, env, location);
    const port = new URL(api.base).port;
    try {
      const { id: vendorId, key } = await api.vendor();
      const pixq = new PixqClient({ baseUrl: api.base, apiKey: key });
      const job = await pixq.submit({ type: 'noop', options: { ms: 600_000 } });
      const events: JobEvent[] = [];
      const waiting = pixq.wait(job.id, { timeoutMs: 60_000, onEvent: (e) => events.push(e) });
      await waitUntil(() => streams(api) > 0, 20_000, 'the event stream to open');
      await api.startWorker();
      await waitUntil(() => events.some((e) => e.state === 'running'), 20_000, 'the running event on the stream');
      await api.close(); // the stream breaks

      // While no API runs, another process returns the job to the queue (if its lease is left) and cancels it.
      const offline = await openServices(loadConfig(testEnv(location, env)));
      await waitUntil(
        async () => {
          await offline.engine.maintenance.reapExpiredLeases();
          return (await offline.engine.jobs.get(job.id, vendorId)).state !== 'running';
        },
        20_000,
        'the job to leave running',
      );
      await offline.engine.jobs.cancel(job.id, vendorId);
      await offline.close();

      api = await startApi(sqliteTarget, { ...env, PORT: port }, location);
      const final = await waiting;
      expect(final.state).toBe('cancelled');
      const ids = events.map((e) => e.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      // Only a replay from the events table can deliver these: they happened with no server to push them.
      const running = events.findIndex((e) => e.state === 'running');
      const missed = events.slice(running + 1).map((e) => e.state);
      expect(missed.length).toBeGreaterThanOrEqual(2);
      expect(missed.at(-1)).toBe('cancelled');
    } finally {
      await api.close();
    }
  });
});
