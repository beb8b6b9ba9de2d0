import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { PixqError, validationFailed } from '../errors.js';
import { assertBlobKey } from './staging.js';
import { OWNER_ONLY } from '../file-modes.js';

/**
 * Signed download URLs for blobs: `/v1/blobs/<key>?exp=<unix s>&ct=<type>[&vid=<vendor>][&tw=<px>]&sig=<base64url>`.
 * With `tw` the link is for a thumbnail of the image, at most that many pixels a side (the dashboard's lists).
 * The signature covers every parameter, so a holder can neither extend the expiry nor change the content type
 * the API will serve the bytes with (which would otherwise turn an uploaded file into HTML on our origin).
 *
 * The secret is PIXQ_SIGNING_SECRET when set. Otherwise one is generated on first use and kept in
 * `<dataDir>/signing.key` (mode 0600), which all processes sharing that data directory agree on.
 * Deployments with more than one host (or separate data directories) must set PIXQ_SIGNING_SECRET,
 * or URLs signed on one host are refused by the others.
 */

export interface BlobUrlClaims {
  key: string;
  vendorId?: string;
  contentType: string;
  /** Epoch milliseconds; rounded down to whole seconds in the URL. */
  expiresAt: number;
  /** A thumbnail of at most this many pixels a side instead of the bytes themselves. */
  thumbnail?: number;
}

export interface VerifiedBlobUrl {
  key: string;
  vendorId: string | undefined;
  contentType: string;
  expiresAt: number;
  thumbnail: number | undefined;
}

/** The largest thumbnail a signed link may ask for. */
export const MAX_THUMBNAIL_SIDE = 1024;

export type BlobUrlQuery = Record<string, string | string[] | undefined>;

/** Only raster image types (and opaque bytes) may be served: nothing a browser would run as a document. */
export const SIGNABLE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/avif',
  'image/tiff',
  'image/gif',
  'application/octet-stream',
]);

const SIGNATURE_VERSION = 'v1';
const SIGNING_KEY_FILE = 'signing.key';

function signature(
  secret: Buffer,
  claims: { key: string; exp: number; ct: string; vid: string | undefined; tw: number | undefined },
): Buffer {
  // JSON of a fixed-order array is an unambiguous encoding: no field can bleed into its neighbour. A thumbnail's
  // width is a sixth element, so links signed before thumbnails existed keep their signature.
  const fields = [SIGNATURE_VERSION, claims.key, claims.exp, claims.ct, claims.vid ?? null];
  const payload = JSON.stringify(claims.tw === undefined ? fields : [...fields, claims.tw]);
  return createHmac('sha256', secret).update(payload).digest();
}

export function signBlobUrl(claims: BlobUrlClaims, secret: Buffer): string {
  assertBlobKey(claims.key);
  if (!SIGNABLE_CONTENT_TYPES.has(claims.contentType)) {
    throw validationFailed(`content type ${claims.contentType} may not be served from a signed URL`);
  }
  if (!Number.isFinite(claims.expiresAt)) throw validationFailed('expiresAt must be a finite epoch-ms number');
  const exp = Math.floor(claims.expiresAt / 1000);
  const tw = claims.thumbnail;
  if (tw !== undefined && !(Number.isInteger(tw) && tw >= 1 && tw <= MAX_THUMBNAIL_SIDE)) {
    throw validationFailed(`a thumbnail is 1 to ${MAX_THUMBNAIL_SIDE} pixels a side`);
  }
  const sig = signature(secret, { key: claims.key, exp, ct: claims.contentType, vid: claims.vendorId, tw });
  const query = new URLSearchParams({ exp: String(exp), ct: claims.contentType });
  if (claims.vendorId !== undefined) query.set('vid', claims.vendorId);
  if (tw !== undefined) query.set('tw', String(tw));
  query.set('sig', sig.toString('base64url'));
  return `/v1/blobs/${claims.key}?${query.toString()}`;
}

function invalidSignature(): PixqError {
  return new PixqError('invalid_signature', 'the download link is invalid', { status: 403 });
}

function single(query: BlobUrlQuery, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw invalidSignature();
  return value;
}

/**
 * Checks a request for `/v1/blobs/<key>` against its query (as a router hands them over). Throws
 * `invalid_signature` (403) for anything not signed by `secret`, `url_expired` (403) once the expiry has passed.
 */
export function verifyBlobUrl(key: string, query: BlobUrlQuery, secret: Buffer, now = Date.now()): VerifiedBlobUrl {
  const exp = single(query, 'exp');
  const ct = single(query, 'ct');
  const vid = single(query, 'vid');
  const sig = single(query, 'sig');
  const twText = single(query, 'tw');
  if (!/^[0-9a-f]{64}$/.test(key) || !exp || !/^\d{1,15}$/.test(exp) || !ct || !sig) throw invalidSignature();
  if (twText !== undefined && !/^\d{1,4}$/.test(twText)) throw invalidSignature();
  const tw = twText === undefined ? undefined : Number(twText);
  const expected = signature(secret, { key, exp: Number(exp), ct, vid, tw });
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidSignature();
  const expiresAt = Number(exp) * 1000;
  if (now >= expiresAt) throw new PixqError('url_expired', 'the download link has expired', { status: 403 });
  return { key, vendorId: vid, contentType: ct, expiresAt, thumbnail: tw };
}

/**
 * The HMAC secret: PIXQ_SIGNING_SECRET if configured, else `<dataDir>/signing.key`, created on first use.
 * Creation writes a temp file and hard-links it into place, which fails if another process won the race, so
 * every process ends up reading the same complete key and never a half-written one.
 */
export async function loadSigningSecret(config: Pick<Config, 'dataDir' | 'signingSecret'>): Promise<Buffer> {
  if (config.signingSecret !== undefined) return Buffer.from(config.signingSecret, 'utf8');
  const file = path.join(config.dataDir, SIGNING_KEY_FILE);
  const existing = await readKeyFile(file);
  if (existing) return existing;
  await mkdir(config.dataDir, { recursive: true });
  const tmp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
  await writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: OWNER_ONLY, flag: 'wx' });
  try {
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp);
  }
  const created = await readKeyFile(file);
  if (!created) throw new Error(`could not read the signing key back from ${file}`);
  return created;
}

async function readKeyFile(file: string): Promise<Buffer | undefined> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // Regenerating a damaged key would silently invalidate every outstanding link; make the operator look instead.
  if (!/^[0-9a-f]{64,}$/.test(text)) {
    throw new Error(`${file} is not a valid signing key (expected at least 64 hex characters); fix or delete it`);
  }
  return Buffer.from(text, 'hex');
}
