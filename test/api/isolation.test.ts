import { beforeAll, expect, it } from 'vitest';
import { DASHBOARD_PATHS } from '../../src/api/dashboard.js';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, imageForm, jpeg, openSse, useApi, waitForJob } from '../support/api.js';

/**
 * Tenancy over real HTTP: another vendor's job, batch, upload, output and event streams do not exist for
 * you (404, never 403, so ids cannot be probed); vendor keys cannot reach admin routes (403); no key or a
 * revoked key is 401 everywhere but the public routes. Route lists come from the OpenAPI document, so a
 * route added later is covered without editing this file.
 */
describeEachStore('vendor isolation and access control', (target) => {
  const api = useApi(target);
  let a: { id: string; key: string };
  let b: { id: string; key: string };
  const owned = { done: '', queued: '', cancelled: '', batch: '', upload: '', oldQueueJob: '' };
  let routes: { method: string; path: string; tags: string[] }[];

  beforeAll(async () => {
    a = await api().vendor();
    b = await api().vendor();
    const upload = await api().call('POST', '/v1/uploads', {
      key: a.key,
      form: imageForm([{ bytes: await jpeg(40, 40) }]),
    });
    owned.upload = upload.body.id;
    owned.done = (
      await api().call('POST', '/v1/jobs', {
        key: a.key,
        json: { type: 'transform', input: { uploadId: owned.upload }, options: { format: 'png' } },
      })
    ).body.id;
    const stop = await api().startWorker();
    await waitForJob(api(), a.key, owned.done, ['succeeded']);
    await stop();
    owned.queued = (await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } })).body.id;
    owned.cancelled = (await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } })).body.id;
    await api().call('POST', `/v1/jobs/${owned.cancelled}/cancel`, { key: a.key });
    owned.batch = (
      await api().call('POST', '/v1/jobs/bulk', { key: a.key, json: { jobs: [{ type: 'noop' }] } })
    ).body.batchId;
    const images = new FormData();
    images.append('images', new Blob([await jpeg(40, 40)], { type: 'image/jpeg' }), 'a.jpg');
    owned.oldQueueJob = (await api().call('POST', '/queue/submit', { key: a.key, form: images })).body.job_id;

    const doc = (await api().call('GET', '/openapi.json')).body;
    routes = Object.entries(doc.paths as Record<string, Record<string, { tags?: string[] }>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, tags: op.tags ?? [] })),
    );
  });

  it("answers 404 to every read or action on another vendor's job, batch, upload and output", async () => {
    const asB = (method: string, path: string, json?: unknown) => api().call(method, path, { key: b.key, json });
    const attempts: [string, string, unknown?][] = [
      ['GET', `/v1/jobs/${owned.done}`],
      ['GET', `/v1/jobs/${owned.done}/output`],
      ['GET', `/v1/jobs/${owned.done}/deliveries`],
      ['POST', `/v1/jobs/${owned.queued}/cancel`],
      ['POST', `/v1/jobs/${owned.cancelled}/retry`],
      ['POST', `/v1/jobs/${owned.done}/retry`],
      ['GET', `/v1/batches/${owned.batch}`],
      ['POST', '/v1/jobs', { type: 'transform', input: { uploadId: owned.upload } }],
      ['POST', '/v1/jobs/bulk', { jobs: [{ type: 'transform', input: { uploadId: owned.upload } }] }],
      // The compatibility APIs: every route that names a job.
      ['GET', `/api/image-queue/job/${owned.done}`],
      ['GET', `/api/image-queue/job/${owned.queued}`],
      ['GET', `/queue/job/${owned.oldQueueJob}`],
      ['POST', `/queue/job/${owned.oldQueueJob}/cancel`],
      ['GET', `/queue/job/${owned.batch}`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await asB(method, path, body);
      expectProblem(res, 404, 'not_found');
      // The answer is the same as for an id that never existed.
      expect(res.body.detail).not.toMatch(/vendor|forbidden|owner/i);
    }
    // The compat lists and counts are scoped too.
    expect((await asB('GET', '/queue/jobs')).body).toEqual({ total: 0, jobs: [] });
    expect((await asB('GET', '/queue/stats')).body.stats.total).toBe(0);
    expect((await asB('GET', '/api/image-queue/queue-stats')).body['remove-bg'].waiting).toBe(0);
    expect((await api().call('GET', `/queue/job/${owned.oldQueueJob}`, { key: a.key })).body.status).toBe('pending');
    // Nothing B did changed A's jobs.
    expect((await api().call('GET', `/v1/jobs/${owned.queued}`, { key: a.key })).body.state).toBe('queued');
    expect((await api().call('GET', `/v1/jobs/${owned.cancelled}`, { key: a.key })).body.state).toBe('cancelled');
    // Listing and stats are scoped: B sees none of A's jobs, even when filtering by A's batch.
    expect((await asB('GET', `/v1/jobs?batchId=${owned.batch}`)).body.jobs).toEqual([]);
    expect((await asB('GET', '/v1/jobs?limit=100')).body.jobs).toEqual([]);
    expect((await asB('GET', '/v1/stats')).body.totals).toEqual({});
    expect((await asB('GET', `/v1/jobs/count?batchId=${owned.batch}`)).body).toEqual({ count: 0 });
    // Bulk actions are scoped the same way: B's cancel and retry find none of A's jobs, and naming A is refused.
    expect((await asB('POST', '/v1/jobs/cancel', {})).body).toMatchObject({ matched: 0, changed: 0 });
    expect((await asB('POST', '/v1/jobs/retry', {})).body).toMatchObject({ matched: 0, changed: 0 });
    expectProblem(await asB('GET', `/v1/jobs?vendorId=${a.id}`), 403, 'forbidden');
    expectProblem(await asB('POST', '/v1/jobs/cancel', { vendorId: a.id }), 403, 'forbidden');
    // The owner, of course, gets all of it.
    expect((await api().call('GET', `/v1/jobs/${owned.done}/output`, { key: a.key })).status).toBe(200);
    expect((await api().call('GET', `/v1/batches/${owned.batch}`, { key: a.key })).status).toBe(200);
  });

  it("answers 404 to another vendor's event stream by jobId or batchId, and never sends it A's events", async () => {
    for (const query of [`jobId=${owned.queued}`, `batchId=${owned.batch}`]) {
      const s = await openSse(api(), `/v1/events?${query}`, b.key);
      expect([s.status, s.body?.code], query).toEqual([404, 'not_found']);
    }
    const streamA = await openSse(api(), '/v1/events', a.key);
    const streamB = await openSse(api(), '/v1/events', b.key);
    try {
      const job = await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } });
      await api().call('POST', `/v1/jobs/${job.body.id}/cancel`, { key: a.key });
      await streamA.waitFor((e) => e.data.jobId === job.body.id && e.data.state === 'cancelled', 10_000, "A's cancel");
      // B's own later event proves B's stream was live while A's events went out.
      const mine = await api().call('POST', '/v1/jobs', { key: b.key, json: { type: 'noop' } });
      await streamB.waitFor((e) => e.data.jobId === mine.body.id, 10_000, "B's own event");
      expect(streamB.events.map((e) => e.data.vendorId)).toEqual([b.id]);
      // Resuming from the very beginning does not replay A's history to B either.
      const replay = await openSse(api(), '/v1/events', b.key, { 'last-event-id': '1' });
      await replay.waitFor((e) => e.data.jobId === mine.body.id, 10_000, "B's replay");
      expect(replay.events.every((e) => e.data.vendorId === b.id)).toBe(true);
      replay.close();
    } finally {
      streamA.close();
      streamB.close();
    }
  });

  const concrete = (path: string) =>
    path
      .replace('{id}', a?.id ?? 'x')
      .replace('{job_id}', owned.oldQueueJob || 'x')
      .replace('{keyId}', '01ZZZZZZZZZZZZZZZZZZZZZZZZ')
      .replace('{type}', 'noop')
      .replace('{key}', '0'.repeat(64));

  it('answers 403 forbidden to a vendor key on every admin route', async () => {
    const admin = routes.filter((r) => r.tags.includes('admin'));
    expect(admin.length).toBeGreaterThanOrEqual(12);
    for (const r of admin) {
      const res = await api().call(r.method, concrete(r.path), {
        key: a.key,
        json: ['POST', 'PUT', 'PATCH'].includes(r.method) ? { name: 'x', paused: true } : undefined,
      });
      expectProblem(res, 403, 'forbidden');
    }
    // And the vendor's settings are untouched by those attempts.
    expect((await api().call('GET', `/v1/vendors/${a.id}`, { key: ADMIN_KEY })).body.status).toBe('active');
    expect(
      (await api().call('GET', '/v1/job-types', { key: ADMIN_KEY })).body.types.find(
        (t: { type: string }) => t.type === 'noop',
      )?.paused ?? false,
    ).toBe(false);
  });

  it('answers 403 to the admin key on routes that act as a vendor', async () => {
    // Reading, listing, cancelling and retrying jobs and following events are open to the admin (admin-scope.test.ts).
    for (const [method, path] of [
      ['POST', '/v1/jobs'],
      ['POST', '/v1/jobs/bulk'],
      ['POST', '/v1/uploads'],
      ['POST', '/v1/events/tokens'],
      ['GET', '/v1/vendors/me'],
      ['GET', '/v1/assets'],
      ['GET', '/v1/delivery'],
    ]) {
      expectProblem(
        await api().call(method, path, { key: ADMIN_KEY, json: method === 'POST' ? { type: 'noop' } : undefined }),
        403,
        'forbidden',
      );
    }
  });

  it('answers 401 to no key, an unknown key and a revoked key on every route that is not public', async () => {
    const revokedVendor = await api().vendor();
    const keys = await api().call('GET', `/v1/vendors/${revokedVendor.id}/keys`, { key: ADMIN_KEY });
    await api().call('DELETE', `/v1/vendors/${revokedVendor.id}/keys/${keys.body.keys[0].id}`, { key: ADMIN_KEY });
    // Delivery URLs carry a signature instead of a key (test/delivery covers them).
    const isPublic = (path: string) =>
      ['/healthz', '/readyz', '/v1/blobs/{key}', '/health', '/i/{path}'].includes(path);
    const guarded = routes.filter((r) => !isPublic(r.path));
    expect(guarded.length).toBeGreaterThanOrEqual(20);
    for (const r of guarded) {
      for (const key of [undefined, revokedVendor.key, 'pixq_not-a-real-key', `${ADMIN_KEY}x`]) {
        const res = await api().call(r.method, concrete(r.path), {
          key,
          json: ['POST', 'PUT', 'PATCH'].includes(r.method) ? {} : undefined,
        });
        // remove.bg's API answers a missing or bad key as remove.bg does: 403 in its own error shape.
        if (r.tags.includes('compat: remove.bg')) {
          expect([r.path, res.status, res.body?.errors?.[0]?.code]).toEqual([r.path, 403, 'auth_failed']);
          continue;
        }
        expectProblem(res, 401, 'unauthorized');
      }
    }
    // Hidden routes too (not in the document): everything is declared, and exactly these are public.
    const hidden = api().app.routeAccess;
    expect(hidden.filter((r) => r.access === undefined)).toEqual([]);
    const publicRoutes = [...new Set(hidden.filter((r) => r.access === 'public').map((r) => r.url))].sort();
    // The dashboard's page and files are public too: they hold no data, the page asks for a key.
    const expected = [
      '/health',
      '/healthz',
      '/openapi.json',
      '/readyz',
      '/v1/blobs/:key',
      ...DASHBOARD_PATHS,
      '/static/*',
      '/i/*',
    ];
    expect(publicRoutes.filter((url) => !url.startsWith('/docs'))).toEqual(expected.sort());
    // (remove.bg's routes answer in remove.bg's shape: checked above.)
    for (const r of hidden.filter((h) => h.access !== 'public' && h.method !== 'HEAD' && !h.url.startsWith('/v1.0/'))) {
      const path = r.url.replace(/:(\w+)/g, (_, name: string) => (name === 'key' ? '0'.repeat(64) : owned.queued));
      expectProblem(
        await api().call(r.method, path, { json: ['POST', 'PUT', 'PATCH'].includes(r.method) ? {} : undefined }),
        401,
        'unauthorized',
      );
    }
    // The public ones answer without a key.
    expect((await api().call('GET', '/healthz')).status).toBe(200);
    expect((await api().call('GET', '/openapi.json')).status).toBe(200);
  });
});
