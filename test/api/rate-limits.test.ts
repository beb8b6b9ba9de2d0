import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import {
  ADMIN_KEY,
  expectProblem,
  imageForm,
  jpeg,
  openSse,
  startApi,
  useApi,
  type Answer,
  type ApiHarness,
} from '../support/api.js';

/**
 * Rate limits over real HTTP: 429 rate_limited with Retry-After and the IETF RateLimit-Policy / RateLimit
 * fields, those fields on every metered answer (success or error), X-Forwarded-For not trusted without a
 * proxy, and budgets shared by two API instances on one store.
 */
const HOUR = 3_600_000;

/**
 * Fixed windows reset on the hour; a run that straddles the reset sees a fresh budget mid-way. Instead of
 * guessing how long a run takes, a failed run that saw the window change runs again (each run makes its own
 * vendors and APIs): the second run is a whole hour away from the next reset.
 */
async function inOneWindow(body: () => Promise<void>, windowMs = HOUR) {
  const window = () => Math.floor(Date.now() / windowMs);
  const started = window();
  try {
    await body();
  } catch (err) {
    if (window() === started) throw err;
    await body();
  }
}

function expectRateHeaders(res: Answer, policies: string[], what: string) {
  const policy = res.headers.get('ratelimit-policy');
  const state = res.headers.get('ratelimit');
  expect(policy, `${what}: RateLimit-Policy`).toBeTruthy();
  expect(state, `${what}: RateLimit`).toBeTruthy();
  for (const name of policies) {
    expect(policy, what).toMatch(new RegExp(`"${name}";q=\\d+;w=\\d+`));
    expect(state, what).toMatch(new RegExp(`"${name}";r=\\d+;t=\\d+`));
  }
}

describeEachStore('rate limits', (target) => {
  const api = useApi(target);

  it('refuses the request past a budget with 429 rate_limited, Retry-After and the RateLimit fields', () =>
    inOneWindow(async () => {
      const { key } = await api().vendor(undefined, { rateLimits: { image: { limit: 3, windowMs: HOUR } } });
      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
        expect(res.status).toBe(202);
        expect(res.headers.get('ratelimit-policy')).toContain('"image";q=3;w=3600');
        remaining.push(/"image";r=(\d+)/.exec(res.headers.get('ratelimit')!)![1]);
      }
      expect(remaining).toEqual(['2', '1', '0']);

      const refused = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
      expectProblem(refused, 429, 'rate_limited');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 3600).toBe(true);
      expect(refused.headers.get('ratelimit')).toMatch(/"image";r=0;t=\d+/);
      expect(refused.body.details).toMatchObject({ policy: 'image', limit: 3, retryAfterSeconds: retryAfter });
      // A multipart submission and an upload spend the same budget.
      expectProblem(
        await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: await jpeg() }]) }),
        429,
        'rate_limited',
      );
      // Refused requests spent nothing, and other budgets are untouched: reading still works.
      expect((await api().call('GET', '/v1/jobs', { key })).body.jobs).toHaveLength(3);
    }));

  it('meters bulk submissions by their own budget and all requests by the requests budget', () =>
    inOneWindow(async () => {
      const { key } = await api().vendor(undefined, {
        rateLimits: { bulk: { limit: 1, windowMs: HOUR }, requests: { limit: 4, windowMs: HOUR } },
      });
      expect((await api().call('POST', '/v1/jobs/bulk', { key, json: { jobs: [{ type: 'noop' }] } })).status).toBe(202);
      const bulk = await api().call('POST', '/v1/jobs/bulk', { key, json: { jobs: [{ type: 'noop' }] } });
      expectProblem(bulk, 429, 'rate_limited');
      expect(bulk.body.details.policy).toBe('bulk');
      // The refused bulk request spent nothing, not even `requests`: three more requests fit in the four.
      expect((await api().call('GET', '/v1/jobs', { key })).status).toBe(200); // request 2
      expect((await api().call('GET', '/v1/vendors/me', { key })).status).toBe(200); // request 3
      expect((await api().call('GET', '/v1/jobs', { key })).status).toBe(200); // request 4
      const spent = await api().call('GET', '/v1/jobs', { key });
      expectProblem(spent, 429, 'rate_limited');
      expect(spent.body.details.policy).toBe('requests');
    }));

  it('puts the RateLimit fields on every answer to a vendor or an anonymous caller, errors included', async () => {
    const { key } = await api().vendor();
    const job = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    await api().call('POST', `/v1/jobs/${job.body.id}/cancel`, { key });
    const vendorCalls: [string, string, Parameters<ApiHarness['call']>[2]?][] = [
      ['GET', '/v1/jobs'],
      ['GET', `/v1/jobs/${job.body.id}`],
      ['GET', `/v1/jobs/${job.body.id}/output`], // 404
      ['POST', `/v1/jobs/${job.body.id}/cancel`], // 409
      ['POST', `/v1/jobs/${job.body.id}/retry`],
      ['GET', '/v1/jobs?state=nope'], // 400
      ['POST', '/v1/jobs', { json: { type: 'nope' } }], // 400
      ['POST', '/v1/jobs', { body: '{', headers: { 'content-type': 'application/json' } }], // 400
      ['POST', '/v1/uploads', { json: {} }], // 415
      ['GET', '/v1/batches/01ZZZZZZZZZZZZZZZZZZZZZZZZ'], // 404
      ['GET', '/v1/stats'],
      ['GET', '/v1/vendors/me'],
      ['GET', '/v1/vendors'], // 403
      ['GET', '/no/such/route'], // 404
    ];
    for (const [method, path, opts] of vendorCalls) {
      const res = await api().call(method, path, { key, ...opts });
      expectRateHeaders(res, ['requests'], `${method} ${path} (${res.status})`);
    }
    const submitted = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    expectRateHeaders(submitted, ['requests', 'image'], 'POST /v1/jobs');
    const stream = await openSse(api(), '/v1/events', key);
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers.get('ratelimit-policy')).toMatch(/"requests";q=\d+/);
      expect(stream.headers.get('ratelimit')).toMatch(/"requests";r=\d+/);
    } finally {
      stream.close();
    }
    for (const [method, path] of [
      ['GET', '/v1/jobs'],
      ['POST', '/v1/jobs'],
      ['GET', '/openapi.json'],
      ['GET', '/v1/blobs/abc?sig=x'],
      ['GET', '/nowhere'],
    ]) {
      const res = await api().call(method, path);
      expectRateHeaders(res, ['anonymous'], `anonymous ${method} ${path} (${res.status})`);
    }
  });

  it('does not trust X-Forwarded-For without a proxy: spoofed addresses share the real one’s budget', () =>
    inOneWindow(async () => {
      const limited = await startApi(target, { PIXQ_RATE_ANONYMOUS: '3/1h' });
      try {
        const spoofs = ['203.0.113.1', '203.0.113.2', '198.51.100.7, 10.0.0.1', '2001:db8::1', '203.0.113.9'];
        const statuses: number[] = [];
        for (const ip of spoofs) {
          const res = await limited.call('GET', '/v1/jobs', {
            headers: { 'x-forwarded-for': ip, 'x-real-ip': ip, forwarded: `for=${ip}` },
          });
          statuses.push(res.status);
          if (res.status === 429) {
            expectProblem(res, 429, 'rate_limited');
            expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
          }
        }
        expect(statuses).toEqual([401, 401, 401, 429, 429]);
        // Failed key guesses spend the same budget.
        expectProblem(await limited.call('GET', '/v1/jobs', { key: 'pixq_guess' }), 429, 'rate_limited');
        // The health probes stay outside it, so an orchestrator is never refused.
        expect((await limited.call('GET', '/healthz')).status).toBe(200);
        expect((await limited.call('GET', '/readyz')).status).toBe(200);
      } finally {
        await limited.close();
      }
    }));

  it('holds the limits across two API instances sharing one store', () =>
    inOneWindow(async () => {
      const first = await startApi(target, { PIXQ_RATE_ANONYMOUS: '3/1h' });
      const second = await startApi(
        target,
        { PIXQ_RATE_ANONYMOUS: '3/1h' },
        { dataDir: first.dataDir, databaseUrl: first.databaseUrl },
      );
      try {
        const { key } = await first.vendor(undefined, { rateLimits: { image: { limit: 6, windowMs: HOUR } } });
        // Alternating instances one by one: the sixth success is the last, wherever it lands.
        const sequential: number[] = [];
        for (let i = 0; i < 4; i++)
          sequential.push(
            (await [first, second][i % 2].call('POST', '/v1/jobs', { key, json: { type: 'noop' } })).status,
          );
        expect(sequential).toEqual([202, 202, 202, 202]);
        // Then ten at once, split across both: exactly two more fit.
        const burst = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            [first, second][i % 2].call('POST', '/v1/jobs', { key, json: { type: 'noop' } }),
          ),
        );
        expect(burst.filter((r) => r.status === 202)).toHaveLength(2);
        for (const r of burst.filter((r) => r.status !== 202)) expectProblem(r, 429, 'rate_limited');
        expect((await second.call('GET', '/v1/jobs?limit=100', { key })).body.jobs).toHaveLength(6);

        // The anonymous budget is per address across instances too.
        const anonymous = [];
        for (let i = 0; i < 4; i++) anonymous.push((await [first, second][i % 2].call('GET', '/v1/stats')).status);
        expect(anonymous).toEqual([401, 401, 401, 429]);
      } finally {
        await second.close();
        await first.close();
      }
    }));

  it('lets the admin raise a vendor’s limit at once, on a running API', () =>
    inOneWindow(async () => {
      const v = await api().vendor(undefined, { rateLimits: { image: { limit: 1, windowMs: HOUR } } });
      expect((await api().call('POST', '/v1/jobs', { key: v.key, json: { type: 'noop' } })).status).toBe(202);
      expectProblem(await api().call('POST', '/v1/jobs', { key: v.key, json: { type: 'noop' } }), 429, 'rate_limited');
      await api().call('PATCH', `/v1/vendors/${v.id}`, {
        key: ADMIN_KEY,
        json: { rateLimits: { image: { limit: 5, windowMs: HOUR } } },
      });
      const res = await api().call('POST', '/v1/jobs', { key: v.key, json: { type: 'noop' } });
      expect(res.status).toBe(202);
      expect(res.headers.get('ratelimit')).toContain('"image";r=3');
    }));
});
