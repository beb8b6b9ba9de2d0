import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { describeEachStore } from '../support/stores.js';
import { expectProblem, imageForm, imageServer, jpeg, useApi, waitForJob } from '../support/api.js';

/**
 * Hostile input over real HTTP, each refusal with its status and stable code: SSRF targets (literal,
 * DNS and redirect), oversized (never stored), mistyped, truncated and enormous images (their bytes left to the ledger's sweep), broken
 * JSON and multipart, unknown types, bad options, oversized bulks and control characters in ids.
 */
const MAX_UPLOAD = 64 * 1024;

describeEachStore('hostile input', (target) => {
  // Only 127.0.0.2 is allowlisted: the redirect test's first hop lives there, and 127.0.0.1 stays forbidden.
  const api = useApi(target, {
    PIXQ_URL_ALLOWLIST: '127.0.0.2',
    PIXQ_MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
    PIXQ_MAX_BULK_FILES: '3',
  });
  let key: string;
  beforeAll(async () => {
    ({ key } = await api().vendor());
  });
  const submit = (json: unknown) => api().call('POST', '/v1/jobs', { key, json });
  const blobFiles = () => walk(path.join(api().dataDir, 'blobs')).sort();
  /**
   * Bytes refused after they were stored are left to the blob ledger (they may be another upload's): once its
   * sweep has run past the grace period, none of the files added since `before` is left.
   */
  const sweptAway = async (before: string[]) => {
    const { engine, blobs } = api().services;
    await engine.blobs.sweep((key) => blobs.delete(key), Date.now() + BLOB_GRACE_MS + 1);
    expect(blobFiles().filter((file) => !before.includes(file))).toEqual([]);
  };

  it.each([
    ['http://127.0.0.1/x.jpg', 'loopback'],
    ['http://[::1]/x.jpg', 'loopback'],
    ['http://10.0.0.1/x.jpg', 'private'],
    ['http://169.254.169.254/latest/meta-data', 'cloud metadata'],
    ['http://localhost/x.jpg', 'loopback'], // a DNS name that resolves to loopback
    ['http://[::ffff:127.0.0.1]/x.jpg', 'loopback'], // IPv4-mapped IPv6
    ['http://2130706433/x.jpg', 'loopback'], // 127.0.0.1 as one decimal number
    ['http://0.0.0.0/x.jpg', 'unspecified'],
    ['http://100.100.100.200/latest/meta-data', 'cloud metadata'],
  ])('refuses the internal target %s with 400 url_not_allowed (%s)', async (url, range) => {
    const res = await submit({ type: 'transform', input: { url } });
    expectProblem(res, 400, 'url_not_allowed');
    expect(res.body.details.range).toBe(range);
  });

  it.each([
    'file:///etc/passwd',
    'ftp://example.com/x.jpg',
    'http://user:secret@example.com/x.jpg',
    'gopher://127.0.0.1:6379/_INFO',
    'not a url',
  ])('refuses the URL %s with 400 url_not_allowed', async (url) =>
    expectProblem(await submit({ type: 'transform', input: { url } }), 400, 'url_not_allowed'),
  );

  it('refuses a bulk containing one internal URL, naming it, and creates no job', async () => {
    const { key: own } = await api().vendor();
    const res = await api().call('POST', '/v1/jobs/bulk', {
      key: own,
      json: {
        jobs: [
          { type: 'transform', input: { url: 'http://127.0.0.2:1/a.jpg' } },
          { type: 'transform', input: { url: 'http://10.1.2.3/b.jpg' } },
        ],
      },
    });
    expectProblem(res, 400, 'url_not_allowed');
    expect(res.body.detail).toMatch(/^jobs\[1\]/);
    expect((await api().call('GET', '/v1/jobs', { key: own })).body.jobs).toEqual([]);
  });

  describe('redirects', () => {
    let internal: Awaited<ReturnType<typeof imageServer>>;
    let redirector: Awaited<ReturnType<typeof imageServer>>;
    beforeAll(async () => {
      internal = await imageServer(await jpeg(), { host: '127.0.0.1' });
      redirector = await imageServer(Buffer.alloc(0), { host: '127.0.0.2', redirectTo: internal.url('/secret.jpg') });
    });
    afterAll(async () => {
      await internal?.close();
      await redirector?.close();
    });

    it('accepts an allowlisted URL whose redirect leads to loopback, then fails the job with url_not_allowed', async () => {
      const res = await submit({ type: 'transform', input: { url: redirector.url('/photo.jpg') } });
      expect(res.status).toBe(202); // the first hop is allowlisted
      const stop = await api().startWorker();
      try {
        const job = await waitForJob(api(), key, res.body.id, ['failed', 'succeeded']);
        expect(job.state).toBe('failed');
        expect(job.error.code).toBe('url_not_allowed');
        expect(job.attempts).toBe(1); // not retryable: trying again would end the same way
      } finally {
        await stop();
      }
      expect(redirector.hits).toEqual(['/photo.jpg']);
      expect(internal.hits).toEqual([]); // the loopback server was never contacted
    });
  });

  it('refuses an oversized upload with 413 payload_too_large and keeps no blob of it', async () => {
    const before = blobFiles();
    const big = await noiseJpeg(400, 400);
    expect(big.length).toBeGreaterThan(MAX_UPLOAD);
    expectProblem(
      await api().call('POST', '/v1/uploads', { key, form: imageForm([{ bytes: big }]) }),
      413,
      'payload_too_large',
    );
    expectProblem(
      await api().call('POST', '/v1/jobs', { key, form: imageForm([{ bytes: big }], { type: 'transform' }) }),
      413,
      'payload_too_large',
    );
    expectProblem(
      await api().call('POST', '/v1/jobs/bulk', { key, form: imageForm([{ bytes: big }], { type: 'transform' }) }),
      413,
      'payload_too_large',
    );
    expect(blobFiles()).toEqual(before);
  });

  it('refuses a text file named .jpg with 415 unsupported_media_type', async () => {
    const before = blobFiles();
    const res = await api().call('POST', '/v1/uploads', {
      key,
      form: imageForm([
        { bytes: Buffer.from('this is not a picture\n'.repeat(50)), name: 'cat.jpg', type: 'image/jpeg' },
      ]),
    });
    expectProblem(res, 415, 'unsupported_media_type');
    await sweptAway(before);
  });

  it('refuses a truncated JPEG with 422 invalid_image', async () => {
    const before = blobFiles();
    const whole = await noiseJpeg(200, 200);
    const res = await api().call('POST', '/v1/uploads', {
      key,
      form: imageForm([{ bytes: whole.subarray(0, Math.floor(whole.length / 2)) }]),
    });
    expectProblem(res, 422, 'invalid_image');
    await sweptAway(before);
  });

  it('refuses a 20,000 x 20,000 PNG with 422 invalid_image from its header, without decoding it', async () => {
    const bomb = hugePng(20_000, 20_000);
    expect(bomb.length).toBeLessThan(MAX_UPLOAD); // small on the wire, 400 megapixels decoded
    const before = blobFiles();
    const res = await api().call('POST', '/v1/uploads', {
      key,
      form: imageForm([{ bytes: bomb, name: 'bomb.png', type: 'image/png' }]),
    });
    expectProblem(res, 422, 'invalid_image');
    // The header check's words: a decode (many seconds and gigabytes for 400 Mpx) only follows when it passes.
    expect(res.body.detail).toMatch(/20000x20000 \(400000000 pixels\), above the limit/);
    await sweptAway(before);
  });

  it('refuses invalid JSON with 400 invalid_json', async () => {
    for (const body of ['{"type": "noop"', '{type: noop}', '{"type":"noop"}}', '\u0000']) {
      expectProblem(
        await api().call('POST', '/v1/jobs', { key, body, headers: { 'content-type': 'application/json' } }),
        400,
        'invalid_json',
      );
    }
  });

  it('refuses an unknown job type with 400 unknown_job_type', async () => {
    expectProblem(await submit({ type: 'sharpen' }), 400, 'unknown_job_type');
    expectProblem(await submit({ type: '__proto__' }), 400, 'unknown_job_type');
  });

  it('refuses invalid options and fields with 400 validation_failed', async () => {
    const url = 'http://127.0.0.2:1/a.jpg';
    for (const body of [
      { type: 'noop', options: { ms: 'soon' } },
      { type: 'noop', options: { ms: -1 } },
      { type: 'noop', options: { colour: 'red' } },
      { type: 'transform', input: { url }, options: { resize: { width: -5 } } },
      { type: 'transform', input: { url }, options: { format: 'bmp' } },
      { type: 'transform' }, // needs an input
      { type: 'noop', input: { url } }, // takes none
      { type: 'noop', priority: 5000 },
      { type: 'noop', priority: '5' },
      { type: 'noop', extra: true },
      { type: 'noop', metadata: { blob: 'x'.repeat(9000) } },
      { type: 'transform', input: { uploadId: 'x\u0000y' } },
    ]) {
      expectProblem(await submit(body), 400, 'validation_failed');
    }
  });

  it('refuses a bulk over the limit with 413 payload_too_large, JSON and multipart', async () => {
    const { key: own } = await api().vendor();
    const json = await api().call('POST', '/v1/jobs/bulk', {
      key: own,
      json: { jobs: [1, 2, 3, 4].map(() => ({ type: 'noop' })) },
    });
    expectProblem(json, 413, 'payload_too_large');
    const files = await Promise.all([1, 2, 3, 4].map((n) => jpeg(10 + n, 10)));
    const form = await api().call('POST', '/v1/jobs/bulk', {
      key: own,
      form: imageForm(
        files.map((bytes) => ({ bytes })),
        { type: 'transform' },
      ),
    });
    expectProblem(form, 413, 'payload_too_large');
    expect((await api().call('GET', '/v1/jobs', { key: own })).body.jobs).toEqual([]);
  });

  it('refuses a JSON body over 1 MiB with 413 payload_too_large', async () => {
    const res = await submit({ type: 'noop', metadata: { pad: 'x'.repeat(1.1 * 1024 * 1024) } });
    expectProblem(res, 413, 'payload_too_large');
  });

  it('answers malformed multipart at once with 400 invalid_multipart (a cut-off form used to hang)', async () => {
    const cut =
      '--abc\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff';
    for (const [route, body, type] of [
      ['/v1/uploads', cut, 'multipart/form-data; boundary=abc'],
      ['/v1/jobs', cut, 'multipart/form-data; boundary=abc'],
      ['/v1/jobs/bulk', cut, 'multipart/form-data; boundary=abc'],
      ['/v1/jobs', 'whatever', 'multipart/form-data'], // no boundary
      ['/v1/uploads', 'whatever', 'multipart/form-data'],
    ]) {
      // call() fails a request the server never answers (its own 15 s deadline) instead of racing a timer here.
      const res = await api().call('POST', route, { key, body, headers: { 'content-type': type } });
      expectProblem(res, 400, 'invalid_multipart');
    }
    // No temp file is left open or behind.
    const tmp = path.join(api().dataDir, 'blobs', 'tmp');
    expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
  });

  it('refuses control characters and junk in ids, cursors and filters with 400 validation_failed', async () => {
    for (const p of [
      '/v1/jobs/a%00b',
      '/v1/jobs/a%0Ab/cancel',
      '/v1/batches/%E2%80%AE',
      '/v1/jobs?cursor=%00',
      '/v1/jobs?batchId=x%00',
      '/v1/events?jobId=%00',
    ]) {
      const method = p.endsWith('/cancel') ? 'POST' : 'GET';
      expectProblem(await api().call(method, p, { key }), 400, 'validation_failed');
    }
    // Broken percent-encoding fails in the router, before any hook: still problem+json.
    expectProblem(await api().call('POST', '/v1/jobs/%zz/retry', { key }), 400, 'validation_failed');
    expectProblem(await api().call('GET', `/v1/jobs/${'A'.repeat(150)}`, { key }), 414, 'uri_too_long');
  });
});

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Random pixels compress badly, so a modest JPEG is large and a cut one is damaged mid-scan. */
async function noiseJpeg(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 2654435761) >>> 24;
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer();
}

/** A real, valid 1-bit PNG of the given size: all-zero rows deflate to almost nothing. */
function hugePng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale
  const rows = zlib.deflateSync(Buffer.alloc((1 + Math.ceil(width / 8)) * height), { level: 9 });
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', header),
    chunk('IDAT', rows),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
