import { createHmac } from 'node:crypto';
import { generateImageUrl } from '@imgproxy/imgproxy-node';
import { afterAll, beforeAll, describe } from 'vitest';
import { startApi, type ApiHarness } from './api.js';
import { startS3Server, type S3Server } from './s3.js';
import { postgresTarget, sqliteTarget, type StoreTarget } from './stores.js';

/**
 * Runs a delivery suite on each store and each blob store: SQLite with the file store, PostgreSQL with the file
 * store (skipped without PIXQ_TEST_DATABASE_URL, as every PostgreSQL run), and SQLite with an S3 bucket
 * (s3rver). `start` opens an API on a fresh store with the setup's blob store.
 */
export interface DeliverySetup {
  name: string;
  start(env?: Record<string, string>): Promise<ApiHarness>;
}

export function describeEachSetup(title: string, body: (setup: DeliverySetup) => void) {
  const onStore = (target: StoreTarget): DeliverySetup => ({
    name: `${target.name}, files`,
    start: (env = {}) => startApi(target, env),
  });
  describe(`${title} [sqlite, files]`, () => body(onStore(sqliteTarget)));
  if (process.env.PIXQ_TEST_DATABASE_URL) describe(`${title} [postgres, files]`, () => body(onStore(postgresTarget)));
  else describe.skip(`${title} [postgres, files] (PIXQ_TEST_DATABASE_URL unset)`, () => body(onStore(postgresTarget)));
  describe(`${title} [sqlite, s3]`, () => {
    let s3: S3Server | undefined;
    beforeAll(async () => {
      s3 = await startS3Server();
    });
    afterAll(async () => {
      await s3?.stop();
    });
    body({ name: 'sqlite, s3', start: (env = {}) => startApi(sqliteTarget, { ...s3!.env, ...env }) });
  });
}

/** A vendor's delivery credentials, as `GET /v1/delivery` answers them. */
export interface Credentials {
  endpoint: string;
  key: string;
  salt: string;
}

export async function credentials(api: ApiHarness, key: string): Promise<Credentials> {
  const res = await api.call('GET', '/v1/delivery', { key });
  if (res.status !== 200) throw new Error(`GET /v1/delivery: ${res.status} ${res.raw.toString()}`);
  return res.body as Credentials;
}

/** A URL built by imgproxy's own Node library, as a real client would (plain or base64 source). */
export function imgproxyUrl(
  creds: Credentials,
  path: string,
  options: Record<string, unknown> = {},
  displayAs: 'plain' | 'base64' = 'plain',
): string {
  return generateImageUrl({
    endpoint: creds.endpoint,
    url: { value: path, displayAs },
    options,
    key: creds.key,
    salt: creds.salt,
  });
}

/**
 * A URL with options as written (`['w:-1', 'blur:3']`), signed here with HMAC-SHA256 as imgproxy documents it:
 * for values imgproxy's builders refuse to produce.
 */
export function rawUrl(creds: Credentials, options: string[], source: string): string {
  const signed = `/${[...options, source].join('/')}`;
  const signature = createHmac('sha256', Buffer.from(creds.key, 'hex'))
    .update(Buffer.from(creds.salt, 'hex'))
    .update(signed)
    .digest('base64url');
  return `${creds.endpoint}/${signature}${signed}`;
}

/** The path of a URL on the API (what `api.call` takes). */
export function pathOf(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}
