import { randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PixqError } from '../../src/errors.js';
import { downloadImage, type DownloadOptions, type Resolver } from '../../src/intake/index.js';
import { startServer, type TestServer } from './support.js';
import { rejection } from '../support/errors.js';
import { waitUntil } from '../support/processes.js';

const PAYLOAD = randomBytes(4096);
const STALL_MS = 10_000;

let server: TestServer;
const stalled = new Set<() => void>();

beforeAll(async () => {
  server = await startServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const to = url.searchParams.get('to');
    switch (url.pathname) {
      case '/image':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': PAYLOAD.length });
        return res.end(PAYLOAD);
      case '/redirect':
        res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: to ?? '/image' });
        return res.end();
      case '/hops': {
        const left = Number(url.searchParams.get('n'));
        res.writeHead(302, { location: left > 0 ? `/hops?n=${left - 1}` : '/image' });
        return res.end();
      }
      case '/big': // no Content-Length: only counting while streaming can catch it
        res.writeHead(200, { 'content-type': 'image/png' });
        return res.end(Buffer.alloc(Number(url.searchParams.get('bytes'))));
      case '/big-declared':
        res.writeHead(200, { 'content-length': Number(url.searchParams.get('bytes')) });
        return res.end(Buffer.alloc(Number(url.searchParams.get('bytes'))));
      case '/status':
        res.writeHead(Number(url.searchParams.get('code')));
        return res.end('nope');
      case '/silent': {
        const timer = setTimeout(() => res.end(), STALL_MS);
        stalled.add(() => clearTimeout(timer));
        return;
      }
      case '/drip': {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.write(Buffer.alloc(10));
        const timer = setTimeout(() => res.end(), STALL_MS);
        stalled.add(() => clearTimeout(timer));
        return;
      }
      default:
        res.writeHead(404);
        res.end();
    }
  });
});

afterAll(async () => {
  for (const clear of stalled) clear();
  await server.close();
});

beforeEach(() => {
  server.hits.length = 0;
});

const LOOPBACK_ONLY = ['127.0.0.1'];

function options(overrides: Partial<DownloadOptions> = {}): DownloadOptions {
  return { maxBytes: 1_000_000, timeoutMs: 2000, allowlist: LOOPBACK_ONLY, ...overrides };
}

/** A DNS stand-in: known names map to fixed addresses, everything else does not exist. */
function fakeDns(table: Record<string, string[]>, calls: string[] = []): Resolver {
  return async (hostname) => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

describe('downloadImage: happy path', () => {
  it('downloads from an allowlisted host and reports the final URL and type', async () => {
    const result = await downloadImage(server.url('/image'), options());
    expect(result.bytes.equals(PAYLOAD)).toBe(true);
    expect(result.finalUrl).toBe(server.url('/image'));
    expect(result.contentType).toBe('image/png');
  });

  it.each([301, 302, 303, 307, 308])('follows a %i redirect, checking the new hop', async (status) => {
    const result = await downloadImage(server.url(`/redirect?status=${status}&to=/image`), options());
    expect(result.bytes.equals(PAYLOAD)).toBe(true);
    expect(result.finalUrl).toBe(server.url('/image'));
  });

  it('follows exactly 5 redirects but not 6', async () => {
    await expect(downloadImage(server.url('/hops?n=4'), options())).resolves.toMatchObject({
      finalUrl: server.url('/image'),
    });
    const err = await rejection(downloadImage(server.url('/hops?n=5'), options()));
    expect([err.code, err.details?.reason]).toEqual(['url_fetch_failed', 'redirects']);
  });

  it('connects to the address its own lookup checked (a name only the injected resolver knows)', async () => {
    const calls: string[] = [];
    const resolve = fakeDns({ 'images.pixq.test': ['127.0.0.1'] }, calls);
    const result = await downloadImage(
      server.url('/image', 'images.pixq.test'),
      options({ allowlist: ['images.pixq.test'], resolve }),
    );
    expect(result.bytes.equals(PAYLOAD)).toBe(true);
    expect(calls).toEqual(['images.pixq.test']);
  });
});

describe('downloadImage: SSRF', () => {
  it.each([
    ['loopback', '127.0.0.1'],
    ['another loopback', '127.0.0.2'],
    ['decimal loopback', '2130706433'],
    ['hex loopback', '0x7f.0.0.1'],
    ['short loopback', '127.1'],
    ['unspecified (reaches loopback on Linux)', '0.0.0.0'],
    ['IPv4-mapped loopback', '[::ffff:127.0.0.1]'],
  ])('refuses %s even though a server is listening there', async (_name, host) => {
    const err = await rejection(downloadImage(server.url('/image', host), options({ allowlist: [] })));
    expect([err.code, err.status]).toEqual(['url_not_allowed', 400]);
    expect(server.hits).toEqual([]);
  });

  it.each([
    'http://[::1]/',
    'http://10.0.0.1/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.100.100.200/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[::ffff:10.0.0.1]/',
    'http://[64:ff9b::a00:1]/',
    'https://10.0.0.1:8443/',
  ])('refuses %s before connecting', async (url) => {
    // Were the check missing, these would hang on connect until the timeout or fail as url_fetch_failed.
    const err = await rejection(downloadImage(url, options({ allowlist: [], timeoutMs: 1000 })));
    expect(err.code).toBe('url_not_allowed');
  });

  it('refuses a name that resolves to loopback (localhost, real DNS)', async () => {
    const err = await rejection(downloadImage(server.url('/image', 'localhost'), options()));
    expect(err.code).toBe('url_not_allowed');
    expect(err.details).toMatchObject({ host: 'localhost', range: 'loopback' });
    expect(server.hits).toEqual([]);
  });

  it('refuses a name if ANY of its addresses is private, whatever the order', async () => {
    const resolve = fakeDns({
      'mixed.pixq.test': ['93.184.216.34', '10.0.0.1'],
      'mixed6.pixq.test': ['2606:4700::1', 'fd00:ec2::254'],
    });
    for (const host of ['mixed.pixq.test', 'mixed6.pixq.test']) {
      const err = await rejection(
        downloadImage(`http://${host}/`, options({ allowlist: [], resolve, timeoutMs: 1000 })),
      );
      expect(err.code).toBe('url_not_allowed');
    }
  });

  it('refuses a name pointing at loopback even when loopback IPs are allowlisted', async () => {
    const resolve = fakeDns({ 'rebind.pixq.test': ['127.0.0.1'] });
    const err = await rejection(
      downloadImage(server.url('/image', 'rebind.pixq.test'), options({ allowlist: ['127.0.0.0/8'], resolve })),
    );
    expect(err.code).toBe('url_not_allowed');
    expect(server.hits).toEqual([]);
  });

  it('refuses a redirect from an allowlisted host to a loopback name', async () => {
    const target = server.url('/image', 'localhost');
    const err = await rejection(downloadImage(server.url(`/redirect?to=${encodeURIComponent(target)}`), options()));
    expect(err.code).toBe('url_not_allowed');
    expect(err.details).toMatchObject({ host: 'localhost' });
    // The first hop was served, so the refusal came from checking the redirect, and its target was never asked.
    expect(server.hits).toEqual(['/redirect?to=' + encodeURIComponent(target)]);
  });

  it.each([
    (port: number) => `http://127.0.0.2:${port}/image`,
    (port: number) => `http://[::ffff:127.0.0.2]:${port}/image`,
    () => 'http://169.254.169.254/latest/meta-data/',
    () => 'http://[::1]/',
    (port: number) => `ftp://127.0.0.1:${port}/image`,
    (port: number) => `file:///etc/passwd?${port}`,
    (port: number) => `http://user:secret@127.0.0.1:${port}/image`,
  ])('refuses a redirect to a forbidden target (%#)', async (targetOf) => {
    const target = targetOf(server.port);
    const err = await rejection(downloadImage(server.url(`/redirect?to=${encodeURIComponent(target)}`), options()));
    expect(err.code).toBe('url_not_allowed');
    expect(server.hits).toHaveLength(1);
  });

  it.each([
    'ftp://127.0.0.1/image.png',
    'file:///etc/passwd',
    'data:image/png;base64,iVBORw0KGgo=',
    'javascript:alert(1)',
    'gopher://127.0.0.1:25/',
    'ws://127.0.0.1/',
    '//127.0.0.1/image',
    'not a url',
    '',
  ])('refuses %j as url_not_allowed', async (url) => {
    const err = await rejection(downloadImage(url, options()));
    expect([err.code, err.status]).toEqual(['url_not_allowed', 400]);
  });

  it('refuses credentials in the URL even for an allowlisted host', async () => {
    const err = await rejection(downloadImage(server.url('/image').replace('//', '//user:pw@'), options()));
    expect(err.code).toBe('url_not_allowed');
    expect(server.hits).toEqual([]);
  });
});

describe('downloadImage: limits and upstream failures', () => {
  it('accepts a body of exactly maxBytes', async () => {
    const result = await downloadImage(server.url('/big?bytes=5000'), options({ maxBytes: 5000 }));
    expect(result.bytes.length).toBe(5000);
  });

  it.each(['/big', '/big-declared'])('refuses a body over maxBytes (%s) with payload_too_large', async (path) => {
    const err = await rejection(downloadImage(server.url(`${path}?bytes=200000`), options({ maxBytes: 5000 })));
    expect([err.code, err.status]).toEqual(['payload_too_large', 413]);
  });

  it.each([
    [404, false],
    [403, false],
    [429, true],
    [503, true],
  ])('reports upstream HTTP %i as url_fetch_failed (retryable: %s)', async (code, retryable) => {
    const err = await rejection(downloadImage(server.url(`/status?code=${code}`), options()));
    expect([err.code, err.status, err.retryable]).toEqual(['url_fetch_failed', 422, retryable]);
    expect(err.details).toMatchObject({ reason: 'status', upstreamStatus: code });
  });

  it.each(['/silent', '/drip'])('gives up on %s after timeoutMs', async (path) => {
    const started = performance.now();
    const err = await rejection(downloadImage(server.url(path), options({ timeoutMs: 300 })));
    // Its own deadline ended it: not before, and (reason timeout) not the server ending the body after STALL_MS.
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect([err.code, err.details?.reason, err.retryable]).toEqual(['url_fetch_failed', 'timeout', true]);
  });

  it('reports an unresolvable name as url_fetch_failed', async () => {
    const err = await rejection(downloadImage('http://nowhere.pixq.test/', options({ resolve: fakeDns({}) })));
    expect([err.code, err.details?.reason]).toEqual(['url_fetch_failed', 'dns']);
  });

  it('stops when the caller aborts', async () => {
    const controller = new AbortController();
    const held = stalled.size;
    // Generous own deadline: only the abort, sent once the server holds the request, can end the download.
    const download = rejection(
      downloadImage(server.url('/silent'), options({ timeoutMs: 60_000, signal: controller.signal })),
    );
    await waitUntil(() => stalled.size > held, 30_000, 'the server to hold the request');
    controller.abort();
    const err = await download;
    expect(err.code).toBe('cancelled');
  });
});

describe('downloadImage: property', () => {
  // Every name "resolves" to a forbidden address or not at all, so no run ever leaves this machine.
  const hostileDns: Resolver = async (hostname) => {
    const pick = hostname.length % 4;
    if (pick === 0) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
    return [
      [{ address: '127.0.0.1', family: 4 }],
      [{ address: '::1', family: 6 }],
      [{ address: '169.254.169.254', family: 4 }],
    ][pick - 1];
  };

  const anyUrl = fc.oneof(
    fc.webUrl({
      validSchemes: ['http', 'https', 'ftp', 'file', 'gopher', 'data'],
      withQueryParameters: true,
      withFragments: true,
    }),
    fc.string(),
    fc
      .tuple(fc.constantFrom('http://', 'https://', 'http://[', 'http://user@', 'file://', ''), fc.string())
      .map(([a, b]) => a + b),
  );

  it('never throws anything but a PixqError, and never fetches', async () => {
    await fc.assert(
      fc.asyncProperty(anyUrl, async (url) => {
        const outcome = await downloadImage(url, options({ allowlist: [], resolve: hostileDns, timeoutMs: 1000 })).then(
          () => 'resolved',
          (err: unknown) => err,
        );
        expect(outcome).toBeInstanceOf(PixqError);
        expect(['url_not_allowed', 'url_fetch_failed']).toContain((outcome as PixqError).code);
      }),
      { numRuns: 150 },
    );
    expect(server.hits).toEqual([]);
  });
});
