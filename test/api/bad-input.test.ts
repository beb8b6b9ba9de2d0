import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, useApi } from '../support/api.js';
import { rawRequest } from '../support/raw-http.js';

/** Hostile input that used to reach a 500 or an answer that is not problem+json. */
describeEachStore('bad input', (target) => {
  const api = useApi(target);

  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('refuses JSON nested 100,000 levels deep with 400 invalid_json naming the limit', async () => {
    const { key } = await api().vendor();
    const body = `{"type":"noop","metadata":{"deep":${nested(100_000)}}}`;
    const res = await api().call('POST', '/v1/jobs', { key, body, headers: { 'content-type': 'application/json' } });
    expectProblem(res, 400, 'invalid_json');
    expect(res.body.detail).toMatch(/32/);
    // The same in a multipart submission's JSON field.
    const form = new FormData();
    form.append('type', 'noop');
    form.append('metadata', `{"deep":${nested(30_000)}}`);
    expectProblem(await api().call('POST', '/v1/jobs', { key, form }), 400, 'invalid_json');
    // Nesting within the limit is fine.
    expect(
      (
        await api().call('POST', '/v1/jobs', {
          key,
          body: `{"type":"noop","metadata":{"a":${nested(20)}}}`,
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(202);
  });

  it('counts the metadata limit in UTF-8 bytes', async () => {
    const { key } = await api().vendor();
    // 3,000 characters, 9,000 bytes: over the 8 KiB limit although under it in UTF-16 units.
    const res = await api().call('POST', '/v1/jobs', {
      key,
      json: { type: 'noop', metadata: { note: '€'.repeat(3000) } },
    });
    expectProblem(res, 400, 'validation_failed');
    expect(res.body.detail).toMatch(/8192 bytes/);
    expect(
      (await api().call('POST', '/v1/jobs', { key, json: { type: 'noop', metadata: { note: '€'.repeat(2000) } } }))
        .status,
    ).toBe(202);
  });

  it('answers NUL or CR in a header value with problem+json 400 malformed_request', async () => {
    for (const value of ['a\u0000b', 'a\rb']) {
      const res = await rawRequest(api().base, `GET /v1/jobs HTTP/1.1\r\nHost: pixq\r\nX-Note: ${value}\r\n\r\n`);
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.body)).toMatchObject({
        status: 400,
        code: 'malformed_request',
        type: 'urn:pixq:problem:malformed_request',
      });
    }
  });
});
