import { createHmac, timingSafeEqual } from 'node:crypto';
import { PixqError } from '../errors.js';

/**
 * Event tokens: `pxe1.<claims>.<signature>`, both base64url; the claims are JSON
 * `{v: vendorId, j?: jobId, b?: batchId, e: expiry in epoch seconds}`. They let a browser's EventSource
 * (which cannot send headers) read one vendor's events for a few minutes; nothing is stored, so a token
 * lives until it expires. The HMAC key is derived from the signing secret under its own label, so a
 * token and a download signature can never be exchanged for one another.
 */
export interface EventTokenClaims {
  vendorId: string;
  jobId?: string;
  batchId?: string;
  /** Epoch milliseconds; kept in whole seconds. */
  expiresAt: number;
}

const PREFIX = 'pxe1';

export function eventTokenKey(signingSecret: Buffer): Buffer {
  return createHmac('sha256', signingSecret).update('pixq event tokens v1').digest();
}

export function signEventToken(claims: EventTokenClaims, key: Buffer): string {
  const body = { v: claims.vendorId, j: claims.jobId, b: claims.batchId, e: Math.floor(claims.expiresAt / 1000) };
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  return `${PREFIX}.${payload}.${mac(key, payload).toString('base64url')}`;
}

/** The claims of a token this server signed; `invalid_token` (401) otherwise, `token_expired` (401) once past. */
export function verifyEventToken(token: string, key: Buffer, now = Date.now()): EventTokenClaims {
  const [prefix, payload, sig, extra] = token.split('.');
  if (prefix !== PREFIX || !payload || !sig || extra !== undefined) throw invalidToken();
  const given = Buffer.from(sig, 'base64url');
  const expected = mac(key, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalidToken();
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
    v: string;
    j?: string;
    b?: string;
    e: number;
  };
  const expiresAt = body.e * 1000;
  if (now >= expiresAt)
    throw new PixqError('token_expired', 'the event token has expired; ask for a new one', { status: 401 });
  return { vendorId: body.v, jobId: body.j, batchId: body.b, expiresAt };
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(`${PREFIX}.${payload}`).digest();
}

const invalidToken = () =>
  new PixqError('invalid_token', 'the event token is not one this server signed', { status: 401 });
