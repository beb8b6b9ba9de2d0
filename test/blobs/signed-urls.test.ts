import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSigningSecret, signBlobUrl, verifyBlobUrl } from '../../src/blobs/index.js';
import { PixqError } from '../../src/errors.js';

const key = randomBytes(32).toString('hex');
const secret = randomBytes(32);
const now = Date.UTC(2030, 0, 1, 12);

function errorOf(fn: () => unknown): PixqError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PixqError);
    return err as PixqError;
  }
  throw new Error('expected a PixqError');
}

/** Verifies a `path?query` string as the router hands it over: the key from the path, the parsed query. */
function verifyBlobPath(pathAndQuery: string, secret: Buffer, now: number) {
  const url = new URL(pathAndQuery, 'http://pixq.invalid');
  const key = /^\/v1\/blobs\/([^/]+)$/.exec(url.pathname)?.[1] ?? '';
  return verifyBlobUrl(key, Object.fromEntries(url.searchParams), secret, now);
}

function withParam(url: string, name: string, value: string): string {
  const parsed = new URL(url, 'http://x');
  parsed.searchParams.set(name, value);
  return `${parsed.pathname}?${parsed.searchParams.toString()}`;
}

describe('signed blob URLs', () => {
  const url = signBlobUrl({ key, vendorId: 'acme', contentType: 'image/webp', expiresAt: now + 60_000 }, secret);

  it('produces a download path that verifies back to its claims', () => {
    expect(url.startsWith(`/v1/blobs/${key}?`)).toBe(true);
    expect(verifyBlobPath(url, secret, now)).toEqual({
      key,
      vendorId: 'acme',
      contentType: 'image/webp',
      expiresAt: now + 60_000,
    });
  });

  it('works without a vendor', () => {
    const plain = signBlobUrl({ key, contentType: 'image/png', expiresAt: now + 1000 }, secret);
    expect(verifyBlobPath(plain, secret, now).vendorId).toBeUndefined();
  });

  it('accepts the router form (key + parsed query)', () => {
    const query = Object.fromEntries(new URL(url, 'http://x').searchParams);
    expect(verifyBlobUrl(key, query, secret, now).contentType).toBe('image/webp');
  });

  it('refuses an expired link', () => {
    const err = errorOf(() => verifyBlobPath(url, secret, now + 60_000));
    expect([err.code, err.status]).toEqual(['url_expired', 403]);
    expect(verifyBlobPath(url, secret, now + 59_000).key).toBe(key);
  });

  it.each([
    ['exp', String(Math.floor(now / 1000) + 86_400)],
    ['ct', 'image/png'],
    ['vid', 'someone-else'],
    ['sig', randomBytes(32).toString('base64url')],
    ['sig', ''],
  ])('refuses a link whose %s was changed', (name, value) => {
    const err = errorOf(() => verifyBlobPath(withParam(url, name, value), secret, now));
    expect([err.code, err.status]).toEqual(['invalid_signature', 403]);
  });

  it('refuses a link with the vendor removed, another key, or another secret', () => {
    const noVendor = new URL(url, 'http://x');
    noVendor.searchParams.delete('vid');
    expect(errorOf(() => verifyBlobPath(`${noVendor.pathname}${noVendor.search}`, secret, now)).code).toBe(
      'invalid_signature',
    );
    const otherKey = url.replace(key, randomBytes(32).toString('hex'));
    expect(errorOf(() => verifyBlobPath(otherKey, secret, now)).code).toBe('invalid_signature');
    expect(errorOf(() => verifyBlobPath(url, randomBytes(32), now)).code).toBe('invalid_signature');
  });

  it('refuses repeated parameters', () => {
    const query = { ...Object.fromEntries(new URL(url, 'http://x').searchParams), ct: ['image/webp', 'text/html'] };
    expect(errorOf(() => verifyBlobUrl(key, query, secret, now)).code).toBe('invalid_signature');
  });

  it('will not sign a type a browser would render as a document, nor a bad key', () => {
    expect(errorOf(() => signBlobUrl({ key, contentType: 'text/html', expiresAt: now }, secret)).code).toBe(
      'validation_failed',
    );
    expect(errorOf(() => signBlobUrl({ key: '../x', contentType: 'image/png', expiresAt: now }, secret)).code).toBe(
      'validation_failed',
    );
  });
});

describe('loadSigningSecret', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pixq-sign-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('uses the configured secret when set', async () => {
    const configured = await loadSigningSecret({ dataDir, signingSecret: 'a-configured-secret' });
    expect(configured.toString()).toBe('a-configured-secret');
    await expect(stat(path.join(dataDir, 'signing.key'))).rejects.toThrow();
  });

  it('otherwise generates one key, persists it with mode 0600 and every caller agrees on it', async () => {
    const loaded = await Promise.all(
      Array.from({ length: 8 }, () => loadSigningSecret({ dataDir, signingSecret: undefined })),
    );
    expect(new Set(loaded.map((k) => k.toString('hex'))).size).toBe(1);
    expect(loaded[0].length).toBe(32);
    const file = path.join(dataDir, 'signing.key');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readFile(file, 'utf8')).trim()).toBe(loaded[0].toString('hex'));
    const again = await loadSigningSecret({ dataDir, signingSecret: undefined });
    expect(again.equals(loaded[0])).toBe(true);
  });

  it('refuses a damaged key file instead of silently replacing it', async () => {
    await writeFile(path.join(dataDir, 'signing.key'), 'not hex');
    await expect(loadSigningSecret({ dataDir, signingSecret: undefined })).rejects.toThrow(/not a valid signing key/);
  });
});
