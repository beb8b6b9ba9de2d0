import Ajv2020 from 'ajv/dist/2020.js';
import { expect, it } from 'vitest';
import { ApiKeyView, VendorView } from '../../src/api/schemas.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';
import {
  ADMIN_KEY,
  expectProblem,
  expectShape,
  imageForm,
  jpeg,
  startApi,
  useApi,
  waitForJob,
} from '../support/api.js';

/**
 * Operator routes (vendors, keys, job types, workers), stats for vendors and the admin, /v1/vendors/me,
 * health probes, the OpenAPI document and /docs, over real HTTP.
 */
describeEachStore('admin, stats, health and documentation', (target) => {
  const api = useApi(target);
  const admin = (method: string, path: string, json?: unknown) => api().call(method, path, { key: ADMIN_KEY, json });

  it('creates, lists, gets (by id or name) and updates vendors', async () => {
    const name = `acme-${Date.now()}`;
    const created = await admin('POST', '/v1/vendors', {
      name,
      weight: 2.5,
      maxRunning: 3,
      maxQueued: 50,
      rateLimits: { image: { limit: 7, windowMs: 60_000 } },
    });
    expect(created.status).toBe(201);
    expectShape(VendorView, created.body.vendor);
    expect(created.body.vendor).toMatchObject({
      name,
      weight: 2.5,
      maxRunning: 3,
      maxQueued: 50,
      status: 'active',
      rateLimits: { image: { limit: 7, windowMs: 60_000 } },
    });
    expect(created.body.apiKey).toMatch(/^pixq_[A-Za-z0-9_-]{43}$/);
    const id = created.body.vendor.id;

    // The key works at once.
    expect((await api().call('GET', '/v1/vendors/me', { key: created.body.apiKey })).body.vendor.id).toBe(id);

    expectProblem(await admin('POST', '/v1/vendors', { name }), 409, 'conflict');
    expectProblem(await admin('POST', '/v1/vendors', { name: 'has space' }), 400, 'validation_failed');
    expectProblem(await admin('POST', '/v1/vendors', { name: 'x', weight: 0 }), 400, 'validation_failed');
    expectProblem(await admin('POST', '/v1/vendors', { name: 'x', colour: 'red' }), 400, 'validation_failed');

    const list = await admin('GET', '/v1/vendors');
    expect(list.status).toBe(200);
    expect(list.body.vendors.map((v: { id: string }) => v.id)).toContain(id);
    expect((await admin('GET', `/v1/vendors/${id}`)).body).toEqual(created.body.vendor);
    expect((await admin('GET', `/v1/vendors/${name}`)).body).toEqual(created.body.vendor);
    expectProblem(await admin('GET', '/v1/vendors/nobody'), 404, 'not_found');

    const updated = await admin('PATCH', `/v1/vendors/${id}`, { weight: 4, maxRunning: null, rateLimits: null });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ id, weight: 4, maxRunning: null, maxQueued: 50, rateLimits: null });
    expectProblem(await admin('PATCH', '/v1/vendors/nobody', { weight: 2 }), 404, 'not_found');
    expectProblem(await admin('PATCH', `/v1/vendors/${id}`, { weight: -1 }), 400, 'validation_failed');
    // 0, false and "" are not "no limit" (null): a JSON body is taken as sent, never coerced.
    for (const bad of [0, false, '', '5']) {
      expectProblem(await admin('PATCH', `/v1/vendors/${id}`, { maxQueued: bad }), 400, 'validation_failed');
    }
    expect((await admin('GET', `/v1/vendors/${id}`)).body.maxQueued).toBe(50);
  });

  it('suspends a vendor (its submissions are 403 vendor_suspended) and reactivates it; enforces maxQueued', async () => {
    const { id, key } = await api().vendor();
    expect((await admin('PATCH', `/v1/vendors/${id}`, { status: 'suspended' })).body.status).toBe('suspended');
    expectProblem(await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } }), 403, 'vendor_suspended');
    expectProblem(
      await api().call('POST', '/v1/jobs/bulk', { key, json: { jobs: [{ type: 'noop' }] } }),
      403,
      'vendor_suspended',
    );
    // Reading stays possible, so a suspended vendor can still collect its results.
    expect((await api().call('GET', '/v1/jobs', { key })).status).toBe(200);
    await admin('PATCH', `/v1/vendors/${id}`, { status: 'active', maxQueued: 1 });
    expect((await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } })).status).toBe(202);
    expectProblem(await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } }), 429, 'quota_exceeded');
  });

  it('issues, lists and revokes keys; a revoked key is 401, the others keep working', async () => {
    const { id, key: first } = await api().vendor();
    const issued = await admin('POST', `/v1/vendors/${id}/keys`);
    expect(issued.status).toBe(201);
    const second: string = issued.body.apiKey;
    expect(second).not.toBe(first);
    for (const key of [first, second]) expect((await api().call('GET', '/v1/jobs', { key })).status).toBe(200);

    const keys = await admin('GET', `/v1/vendors/${id}/keys`);
    expect(keys.body.keys).toHaveLength(2);
    for (const k of keys.body.keys) expectShape(ApiKeyView, k);
    expect(keys.body.keys.map((k: { prefix: string }) => k.prefix)).toEqual([first.slice(0, 12), second.slice(0, 12)]);
    // Keys are shown once: listing never reveals them.
    expect(keys.raw.toString()).not.toContain(first);
    expect(keys.raw.toString()).not.toContain(second);

    const revoked = await admin('DELETE', `/v1/vendors/${id}/keys/${issued.body.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expectProblem(await api().call('GET', '/v1/jobs', { key: second }), 401, 'unauthorized');
    expect((await api().call('GET', '/v1/jobs', { key: first })).status).toBe(200);
    // X-API-Key works like the bearer header.
    expect((await api().call('GET', '/v1/jobs', { headers: { 'x-api-key': first } })).status).toBe(200);

    expectProblem(await admin('DELETE', `/v1/vendors/${id}/keys/01ZZZZZZZZZZZZZZZZZZZZZZZZ`), 404, 'not_found');
    expectProblem(await admin('POST', '/v1/vendors/nobody/keys'), 404, 'not_found');
  });

  it('pauses and resumes a job type: paused jobs wait, resumed ones run; PUT sets caps and rate limits', async () => {
    const { key } = await api().vendor();
    const paused = await admin('POST', '/v1/job-types/noop/pause');
    expect(paused.body).toMatchObject({ type: 'noop', paused: true });
    const job = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    const stop = await api().startWorker();
    try {
      // A transform job submitted after it and run to the end: the worker's claims (every type in one go)
      // have since looked for work with noop slots free, so had the pause not held, the noop job would have run.
      const later = await api().call('POST', '/v1/jobs', {
        key,
        form: imageForm([{ bytes: await jpeg() }], { type: 'transform' }),
      });
      await waitForJob(api(), key, later.body.id, ['succeeded'], 60_000);
      expect((await api().call('GET', `/v1/jobs/${job.body.id}`, { key })).body.state).toBe('queued');
      expect((await admin('POST', '/v1/job-types/noop/resume')).body).toMatchObject({ type: 'noop', paused: false });
      await waitForJob(api(), key, job.body.id, ['succeeded']);

      // The worker reports itself.
      const workers = await admin('GET', '/v1/workers');
      expect(workers.status).toBe(200);
      expect(workers.body.workers).toEqual([
        expect.objectContaining({
          pid: process.pid,
          slots: expect.objectContaining({ noop: 4 }),
          stopping: false,
          heartbeatAt: expect.any(String),
        }),
      ]);
    } finally {
      await stop();
    }
    expect((await admin('GET', '/v1/workers')).body.workers).toEqual([]);

    const put = await admin('PUT', '/v1/job-types/transform', {
      maxRunning: 2,
      rateLimit: { limit: 10, windowMs: 60_000 },
    });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({
      type: 'transform',
      paused: false,
      maxRunning: 2,
      rateLimit: { limit: 10, windowMs: 60_000 },
    });
    const types = await admin('GET', '/v1/job-types');
    expect(types.body.types).toEqual(expect.arrayContaining([put.body]));
    expect(types.body.available).toEqual(expect.arrayContaining(['transform', 'noop']));
    await admin('PUT', '/v1/job-types/transform', { maxRunning: null, rateLimit: null });

    expectProblem(await admin('PUT', '/v1/job-types/transfrom', { paused: true }), 400, 'unknown_job_type');
    expectProblem(await admin('POST', '/v1/job-types/nope/pause'), 400, 'unknown_job_type');
    expectProblem(await admin('PUT', '/v1/job-types/noop', { maxRunning: 0 }), 400, 'validation_failed');
  });

  it("shows a vendor its own stats and the admin everyone's", async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    for (const v of [a, a, b]) await api().call('POST', '/v1/jobs', { key: v.key, json: { type: 'noop' } });
    const cancel = await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } });
    await api().call('POST', `/v1/jobs/${cancel.body.id}/cancel`, { key: a.key });

    const own = await api().call('GET', '/v1/stats?windowMinutes=60', { key: a.key });
    expect(own.status).toBe(200);
    expect(Object.keys(own.body.byVendor)).toEqual([a.id]);
    expect(own.body.totals).toEqual({ queued: 2, cancelled: 1 });
    expect(own.body.window).toMatchObject({ ms: 3_600_000, finished: 1 });

    const all = await api().call('GET', '/v1/stats', { key: ADMIN_KEY });
    expect(all.body.byVendor[a.id]).toEqual({ queued: 2, cancelled: 1 });
    expect(all.body.byVendor[b.id]).toEqual({ queued: 1 });
    expect(Object.keys(all.body.byVendor).length).toBeGreaterThanOrEqual(2);
    expect(all.body.window.ms).toBe(15 * 60_000);
    expectProblem(await api().call('GET', '/v1/stats?windowMinutes=0', { key: a.key }), 400, 'validation_failed');
  });

  it('tells a vendor its limits (own overrides over defaults) and usage at /v1/vendors/me', async () => {
    const v = await api().vendor(undefined, { rateLimits: { image: { limit: 7, windowMs: 60_000 } } });
    await api().call('POST', '/v1/jobs', { key: v.key, json: { type: 'noop' } });
    const me = await api().call('GET', '/v1/vendors/me', { key: v.key });
    expect(me.status).toBe(200);
    expect(me.body.vendor).toMatchObject({ id: v.id, rateLimits: { image: { limit: 7, windowMs: 60_000 } } });
    expect(me.body.rateLimits.image).toEqual({ limit: 7, windowMs: 60_000 });
    expect(me.body.rateLimits.requests).toEqual(api().config.rateLimits.requests);
    expect(me.body.rateLimits).not.toHaveProperty('anonymous');
    expect(me.body.usage).toEqual({ jobs: { queued: 1 }, storage: { usedBytes: 0, maxBytes: null } });
    expectProblem(await api().call('GET', '/v1/vendors/me', { key: ADMIN_KEY }), 403, 'forbidden');
  });

  it('answers the health probes without a key', async () => {
    expect(await api().call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await api().call('GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('reports not ready (503 not_ready) when the store is gone', async () => {
    const broken = await startApi(target);
    try {
      expect((await broken.call('GET', '/readyz')).status).toBe(200);
      await broken.services.engine.close(); // the bus and the store, as when the database goes away
      expectProblem(await broken.call('GET', '/readyz'), 503, 'not_ready');
      expect((await broken.call('GET', '/healthz')).status).toBe(200); // the process itself is fine
    } finally {
      await broken.close().catch(() => undefined); // fails on the already closed engine, before dropping
      await dropDatabase(broken.databaseUrl);
    }
  });

  it('publishes a valid OpenAPI 3.1 document with every route, and the docs UI', async () => {
    const res = await api().call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: 'pixq', version: expect.any(String) });
    const expected: Record<string, string[]> = {
      '/v1/jobs': ['get', 'post'],
      '/v1/jobs/bulk': ['post'],
      '/v1/jobs/count': ['get'],
      '/v1/jobs/cancel': ['post'],
      '/v1/jobs/retry': ['post'],
      '/v1/jobs/{id}': ['get'],
      '/v1/jobs/{id}/cancel': ['post'],
      '/v1/jobs/{id}/retry': ['post'],
      '/v1/jobs/{id}/output': ['get'],
      '/v1/jobs/{id}/input': ['get'],
      '/v1/jobs/{id}/events': ['get'],
      '/v1/uploads': ['post'],
      '/v1/batches/{id}': ['get'],
      '/v1/events': ['get'],
      '/v1/events/tokens': ['post'],
      '/v1/stats': ['get'],
      '/v1/stats/series': ['get'],
      '/v1/whoami': ['get'],
      '/v1/vendors/me': ['get'],
      '/v1/vendors': ['get', 'post'],
      '/v1/vendors/{id}': ['get', 'patch'],
      '/v1/vendors/{id}/keys': ['get', 'post'],
      '/v1/vendors/{id}/keys/{keyId}': ['delete'],
      '/v1/job-types': ['get'],
      '/v1/job-types/{type}': ['put'],
      '/v1/job-types/{type}/pause': ['post'],
      '/v1/job-types/{type}/resume': ['post'],
      '/v1/workers': ['get'],
      '/healthz': ['get'],
      '/readyz': ['get'],
      '/v1/blobs/{key}': ['get'],
      '/metrics': ['get'],
      '/api/scans': ['post'],
      '/api/scans/{scanId}/status': ['get'],
      '/api/queue/stats': ['get'],
      '/api/image-queue/remove-bg-queue': ['post'],
      '/api/image-queue/crop-face-queue': ['post'],
      '/api/image-queue/bulk-remove-bg': ['post'],
      '/api/image-queue/bulk-crop-face': ['post'],
      '/api/image-queue/job/{id}': ['get'],
      '/api/image-queue/queue-stats': ['get'],
      '/api/worker/health': ['get'],
      '/api/remove': ['get', 'post'],
      '/queue/submit': ['post'],
      '/queue/job/{job_id}': ['get'],
      '/queue/job/{job_id}/cancel': ['post'],
      '/queue/jobs': ['get'],
      '/queue/stats': ['get'],
      '/health': ['get'],
      '/v1/webhooks': ['get', 'post'],
      '/v1/webhooks/{id}': ['delete', 'get', 'patch'],
      '/v1/webhooks/{id}/rotate-secret': ['post'],
      '/v1/webhooks/{id}/deliveries': ['get'],
      '/v1/webhooks/{id}/deliveries/{deliveryId}/replay': ['post'],
      '/v1/webhooks/callback-secret': ['get'],
      '/v1/webhooks/callback-secret/rotate': ['post'],
      '/v1/jobs/{id}/deliveries': ['get'],
      '/v1/templates': ['get', 'post'],
      '/v1/templates/{name}': ['delete', 'get', 'put'],
      '/v1.0/removebg': ['post'],
      '/v1.0/account': ['get'],
      '/v1/assets': ['get'],
      '/v1/assets/{path}': ['delete', 'get', 'put'],
      '/v1/jobs/{id}/publish': ['post'],
      '/v1/delivery': ['get', 'patch'],
      '/v1/delivery/rotate': ['post'],
      '/v1/delivery/presets': ['get', 'put'],
      '/i/{path}': ['get'],
    };
    expect(
      Object.fromEntries(Object.entries(doc.paths).map(([p, ops]) => [p, Object.keys(ops as object).sort()])),
    ).toEqual(expected);

    // Structure per the OpenAPI 3.1 rules that matter to generators and clients, and every embedded schema
    // must compile as JSON Schema 2020-12 (the dialect 3.1 uses).
    const ajv = new Ajv2020.default({ strict: false, validateFormats: false });
    const schemas: unknown[] = [];
    const operationIds = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(ops)) {
        expect(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']).toContain(method);
        const responses = Object.keys(op.responses ?? {});
        expect(responses.length, `${method} ${path} responses`).toBeGreaterThan(0);
        for (const code of responses) {
          expect(code).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
          expect(typeof op.responses[code].description, `${method} ${path} ${code} description`).toBe('string');
          // Errors are documented as what they are sent as.
          if (code.startsWith('4'))
            expect(Object.keys(op.responses[code].content ?? {}), `${method} ${path} ${code}`).toEqual([
              'application/problem+json',
            ]);
          for (const media of Object.values(op.responses[code].content ?? {}) as { schema?: unknown }[])
            schemas.push(media.schema);
        }
        const pathParams = (op.parameters ?? []).filter((p: { in: string }) => p.in === 'path');
        expect(pathParams.map((p: { name: string }) => p.name).sort(), `${method} ${path} path parameters`).toEqual(
          [...templated].sort(),
        );
        expect(pathParams.every((p: { required: boolean }) => p.required === true)).toBe(true);
        for (const p of op.parameters ?? []) {
          expect(['query', 'header', 'path', 'cookie']).toContain(p.in);
          schemas.push(p.schema);
        }
        for (const media of Object.values(op.requestBody?.content ?? {}) as { schema?: unknown }[])
          schemas.push(media.schema);
        if (op.operationId) {
          expect(operationIds.has(op.operationId)).toBe(false);
          operationIds.add(op.operationId);
        }
      }
    }
    for (const name of Object.keys(doc.security?.[0] ?? {}))
      expect(doc.components.securitySchemes).toHaveProperty(name);
    expect(schemas.length).toBeGreaterThan(40);
    for (const schema of schemas.filter(Boolean)) {
      expect(() => ajv.compile({ ...(schema as object), $defs: doc.components?.schemas ?? {} })).not.toThrow();
    }

    const docs = await api().call('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.contentType).toMatch(/^text\/html/);
    expect(docs.raw.toString()).toMatch(/swagger/i);
  });
});

describeEachStore('Prometheus metrics', (target) => {
  const api = useApi(target);

  it('reports job counts by state and type from the store, to the admin only', async () => {
    const { key } = await api().vendor();
    for (let i = 0; i < 3; i++)
      expect(
        (await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 60_000 } } })).status,
      ).toBe(202);
    const res = await fetch(`${api().base}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const queued = /^pixq_jobs\{state="queued",type="noop"\} (\d+)$/m.exec(text);
    const running = /^pixq_jobs\{state="running",type="noop"\} (\d+)$/m.exec(text);
    expect(Number(queued?.[1]) + Number(running?.[1])).toBe(3);
    expect(text).toMatch(/^pixq_process_resident_memory_bytes \d+/m);
    expectProblem(await api().call('GET', '/metrics', { key }), 403, 'forbidden');
    expectProblem(await api().call('GET', '/metrics'), 401, 'unauthorized');
  });
});
