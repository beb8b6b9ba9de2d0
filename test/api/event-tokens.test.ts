import { describe, expect, it } from 'vitest';
import { eventTokenKey, signEventToken } from '../../src/api/event-tokens.js';
import { loadSigningSecret } from '../../src/blobs/index.js';
import { expectProblem, openSse, useApi, type ApiHarness } from '../support/api.js';
import { describeEachStore, sqliteTarget } from '../support/stores.js';

/** GET /v1/events?token= with no key in a header, as a browser's EventSource connects. */
async function tokenStream(api: ApiHarness, token: string, query = '') {
  return openSse(api, `/v1/events?token=${encodeURIComponent(token)}${query}`, '', { authorization: '' });
}

async function issue(api: ApiHarness, key: string, body: Record<string, unknown> = {}) {
  const res = await api.call('POST', '/v1/events/tokens', { key, json: body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { token: string; expiresAt: string; jobId: string | null; batchId: string | null };
}

describeEachStore('event tokens', (target) => {
  const api = useApi(target);

  it('issues a token of at most 15 minutes that reads only its job, and refuses other jobs', async () => {
    const { key } = await api().vendor();
    const mine = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    const other = await api().call('POST', '/v1/jobs', { key, json: { type: 'noop' } });
    const before = Date.now();
    const bound = await issue(api(), key, { jobId: mine.body.id });
    expect(bound.jobId).toBe(mine.body.id);
    const after = Date.now();
    // 15 minutes from when the server issued it (between before and after), in whole seconds rounded down.
    const expiresAt = Date.parse(bound.expiresAt);
    expect(expiresAt).toBeGreaterThan(before + 900_000 - 1000);
    expect(expiresAt).toBeLessThanOrEqual(after + 900_000);
    expectProblem(
      await api().call('POST', '/v1/events/tokens', { key, json: { ttlSeconds: 901 } }),
      400,
      'validation_failed',
    );
    expectProblem(
      await api().call('POST', '/v1/events/tokens', { key, json: { jobId: mine.body.id, batchId: 'b1' } }),
      400,
      'validation_failed',
    );

    const asked = await tokenStream(api(), bound.token, `&jobId=${other.body.id}`);
    expect(asked.status).toBe(403);
    expect(asked.body.code).toBe('forbidden');

    // Without a filter the stream is still only the token's job.
    const stream = await tokenStream(api(), bound.token);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await api().call('POST', `/v1/jobs/${other.body.id}/cancel`, { key });
    await api().call('POST', `/v1/jobs/${mine.body.id}/cancel`, { key });
    await stream.waitFor((e) => e.data.state === 'cancelled', 15_000, 'the bound job cancelled');
    stream.close();
    expect(stream.events.map((e) => e.data.jobId)).toEqual([mine.body.id]);

    // A new EventSource resumes with ?lastEventId= (it cannot set the header): the replay brings what it missed.
    const cancelledId = Number(stream.events[0].id);
    const resumed = await tokenStream(api(), bound.token, `&lastEventId=${cancelledId - 1}`);
    await resumed.waitFor((e) => e.data.state === 'cancelled');
    resumed.close();
    expect(resumed.events.map((e) => Number(e.id))).toEqual([cancelledId]);
  });

  it('binds to a batch, and a vendor-wide token reads only that vendor’s events', async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    const bulk = await api().call('POST', '/v1/jobs/bulk', {
      key: a.key,
      json: { jobs: [{ type: 'noop' }, { type: 'noop' }] },
    });
    const batchToken = await issue(api(), a.key, { batchId: bulk.body.batchId });
    expect((await tokenStream(api(), batchToken.token, `&jobId=${bulk.body.jobIds[0]}`)).status).toBe(403);
    const stream = await tokenStream(api(), batchToken.token);
    const wide = await tokenStream(api(), (await issue(api(), b.key)).token);
    for (const id of bulk.body.jobIds) await api().call('POST', `/v1/jobs/${id}/cancel`, { key: a.key });
    const theirs = await api().call('POST', '/v1/jobs', { key: b.key, json: { type: 'noop' } });
    await api().call('POST', `/v1/jobs/${theirs.body.id}/cancel`, { key: b.key });
    await stream.waitFor((e) => e.data.jobId === bulk.body.jobIds[1] && e.data.state === 'cancelled');
    await wide.waitFor((e) => e.data.jobId === theirs.body.id && e.data.state === 'cancelled');
    stream.close();
    wide.close();
    expect(new Set(stream.events.map((e) => e.data.batchId))).toEqual(new Set([bulk.body.batchId]));
    expect(new Set(wide.events.map((e) => e.data.vendorId))).toEqual(new Set([b.id]));
  });

  it('does not bind a token to, or show through one, another vendor’s job', async () => {
    const a = await api().vendor();
    const b = await api().vendor();
    const job = await api().call('POST', '/v1/jobs', { key: a.key, json: { type: 'noop' } });
    expectProblem(
      await api().call('POST', '/v1/events/tokens', { key: b.key, json: { jobId: job.body.id } }),
      404,
      'not_found',
    );
    const theirs = await issue(api(), b.key);
    const peek = await tokenStream(api(), theirs.token, `&jobId=${job.body.id}`);
    expect(peek.status).toBe(404);
    expect(peek.body.code).toBe('not_found');
  });

  it('is documented in the OpenAPI document with its body and answer', async () => {
    const doc = (await api().call('GET', '/openapi.json')).body;
    const route = doc.paths['/v1/events/tokens'].post;
    expect(Object.keys(route.requestBody.content['application/json'].schema.properties).sort()).toEqual([
      'batchId',
      'jobId',
      'ttlSeconds',
    ]);
    expect(Object.keys(route.responses['201'].content['application/json'].schema.properties).sort()).toEqual([
      'batchId',
      'expiresAt',
      'jobId',
      'token',
    ]);
    expect(doc.paths['/v1/events'].get.parameters.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['token', 'lastEventId']),
    );
  });

  it('refuses expired, forged and misplaced tokens with 401 problem+json', async () => {
    const { id, key } = await api().vendor();
    const tokenKey = eventTokenKey(await loadSigningSecret(api().config));
    const expired = signEventToken({ vendorId: id, expiresAt: Date.now() - 1000 }, tokenKey);
    expectProblem(await api().call('GET', `/v1/events?token=${expired}`), 401, 'token_expired');

    const { token } = await issue(api(), key);
    const [prefix, payload, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const widened = Buffer.from(JSON.stringify({ ...claims, e: claims.e + 86_400 })).toString('base64url');
    expectProblem(await api().call('GET', `/v1/events?token=${prefix}.${widened}.${sig}`), 401, 'invalid_token');
    const otherKey = signEventToken(
      { vendorId: id, expiresAt: Date.now() + 60_000 },
      eventTokenKey(Buffer.from('another-secret-0123456789')),
    );
    expectProblem(await api().call('GET', `/v1/events?token=${otherKey}`), 401, 'invalid_token');
    expectProblem(await api().call('GET', '/v1/events?token=garbage'), 401, 'invalid_token');
    // A token is for the event stream only: other routes still want a key, and it cannot mint tokens.
    expectProblem(await api().call('GET', `/v1/jobs?token=${token}`), 401, 'unauthorized');
    expectProblem(await api().call('POST', `/v1/events/tokens?token=${token}`, { json: {} }), 401, 'unauthorized');
  });
});

describe('CORS', () => {
  const allowed = 'http://app.example.test:5173';
  const api = useApi(sqliteTarget, { PIXQ_CORS_ORIGINS: `${allowed},https://admin.example.test` });
  const closed = useApi(sqliteTarget);

  it('answers preflights for configured origins only, before authentication', async () => {
    const preflight = (origin: string, on = api) =>
      on().call('OPTIONS', '/v1/jobs', {
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
    const ok = await preflight(allowed);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(ok.headers.get('access-control-allow-headers')).toContain('last-event-id');
    expect(ok.headers.get('vary')).toContain('Origin');
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    expect((await preflight('http://evil.example.test')).headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight(allowed, closed)).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('names the origin on answers and refusals, exposing the rate-limit headers', async () => {
    const { key } = await api().vendor();
    const headers = { origin: allowed };
    const read = await api().call('GET', '/v1/stats', { key, headers });
    expect(read.status).toBe(200);
    expect(read.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(read.headers.get('access-control-expose-headers')).toContain('retry-after');
    const refused = await api().call('GET', '/v1/stats', { headers });
    expectProblem(refused, 401, 'unauthorized');
    expect(refused.headers.get('access-control-allow-origin')).toBe(allowed);
    const { token } = await issue(api(), key);
    const stream = await openSse(api(), `/v1/events?token=${token}`, '', { authorization: '', origin: allowed });
    expect(stream.headers.get('access-control-allow-origin')).toBe(allowed);
    stream.close();
  });
});
