import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import { payloadTooLarge } from '../blobs/staging.js';
import { jobErrors, PixqError } from '../errors.js';
import { forbiddenRange, isAllowlisted, parseAllowlist, parseIp, type Allowlist } from './address-policy.js';

/** Resolves a host name to every address it has; injectable so tests can play DNS without a network. */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export interface DownloadOptions {
  maxBytes: number;
  /** Budget for the whole download: every connection, redirect and the body. */
  timeoutMs: number;
  /** PIXQ_URL_ALLOWLIST entries: hostnames, IP literals or CIDRs that may be private addresses. */
  allowlist: readonly string[];
  maxRedirects?: number;
  signal?: AbortSignal;
  resolve?: Resolver;
}

export interface DownloadedImage {
  bytes: Buffer;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
  /** What the server claimed; informational only, the caller sniffs the bytes. */
  contentType: string | undefined;
}

const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = {
  accept: 'image/avif,image/webp,image/*;q=0.9,*/*;q=0.5',
  // Compressed transfer would make maxBytes count the wrong bytes and let a small body inflate.
  'accept-encoding': 'identity',
  'user-agent': 'pixq (image fetch)',
};

export function urlNotAllowed(message: string, details?: Record<string, unknown>): PixqError {
  return new PixqError('url_not_allowed', message, { status: 400, details });
}

export function urlFetchFailed(
  reason: 'timeout' | 'status' | 'network' | 'dns' | 'redirects',
  message: string,
  opts: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {},
): PixqError {
  return new PixqError('url_fetch_failed', message, {
    status: 422,
    retryable: opts.retryable ?? false,
    details: { reason, ...opts.details },
    cause: opts.cause,
  });
}

export const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true });

/**
 * Downloads an image URL for intake, defending against SSRF:
 * - only http and https, no credentials in the URL (`url_not_allowed`, 400); any port is allowed, since the
 *   address check, not the port, is what keeps internal services out of reach;
 * - the destination must be public unicast unless the host is allowlisted (see address-policy.ts); a name is
 *   refused if ANY of its addresses is not, and the check runs inside the connection's own DNS lookup, so the
 *   socket connects to exactly the addresses that were checked (no DNS-rebinding window);
 * - redirects are followed by hand, at most `maxRedirects` (5), each hop checked like the first;
 * - more than `maxBytes` (by Content-Length or while streaming): `payload_too_large` (413);
 * - past `timeoutMs`, on a non-2xx answer, a network or DNS failure: `url_fetch_failed` (422) with
 *   `details.reason`; timeouts, network errors, 429 and 5xx are marked retryable.
 * Anything thrown is a PixqError.
 */
export async function downloadImage(rawUrl: string, opts: DownloadOptions): Promise<DownloadedImage> {
  const allowlist = parseAllowlist(opts.allowlist);
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([deadline, opts.signal]) : deadline;
  const agent = guardedAgent(allowlist, opts.timeoutMs, opts.resolve);
  try {
    return await followRedirects(parseUrl(rawUrl), allowlist, agent, signal, opts);
  } catch (err) {
    throw normalizeError(err, { deadline, caller: opts.signal, timeoutMs: opts.timeoutMs });
  } finally {
    agent.destroy().catch(() => {});
  }
}

/**
 * An HTTP agent whose sockets connect only to addresses the SSRF rules allow (the check runs in the socket's
 * own DNS lookup; IP literals in URLs are checked with `assertLiteralAllowed`). For every outbound call to a
 * URL a vendor chose: image downloads and webhook deliveries.
 */
export function guardedAgent(allowlist: Allowlist, timeoutMs: number, resolve: Resolver = defaultResolver): Agent {
  return new Agent({
    connect: { lookup: guardedLookup(allowlist, resolve), timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
}

async function followRedirects(
  first: URL,
  allowlist: Allowlist,
  agent: Agent,
  signal: AbortSignal,
  opts: DownloadOptions,
): Promise<DownloadedImage> {
  const maxRedirects = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  let url = first;
  for (let hop = 0; ; hop++) {
    assertLiteralAllowed(url, allowlist);
    const response = await request(url, { dispatcher: agent, method: 'GET', headers: REQUEST_HEADERS, signal });
    if (REDIRECT_STATUSES.has(response.statusCode)) {
      discard(response);
      if (hop >= maxRedirects) throw urlFetchFailed('redirects', `more than ${maxRedirects} redirects`);
      url = redirectTarget(response, url);
      continue;
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      discard(response);
      throw upstreamStatus(response.statusCode);
    }
    const bytes = await readLimited(response, opts.maxBytes);
    return { bytes, finalUrl: url.href, contentType: header(response, 'content-type') };
  }
}

export function parseUrl(raw: string | URL, base?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw urlNotAllowed('not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw urlNotAllowed(`only http and https URLs can be fetched, not ${url.protocol.replace(/:$/, '')}`);
  }
  // Credentials would be sent on to whatever host a redirect names, and tend to end up in logs.
  if (url.username || url.password) throw urlNotAllowed('URLs with credentials are not accepted');
  if (!url.hostname) throw urlNotAllowed('the URL has no host');
  return url;
}

/** IP literals skip DNS, so the socket's lookup never sees them: they are checked here instead. */
export function assertLiteralAllowed(url: URL, allowlist: Allowlist): void {
  if (!parseIp(url.hostname) || isAllowlisted(url.hostname, allowlist)) return;
  const range = forbiddenRange(url.hostname);
  if (range) throw urlNotAllowed(`${url.hostname} is a ${range} address`, { host: url.hostname, range });
}

function redirectTarget(response: Dispatcher.ResponseData, from: URL): URL {
  const location = header(response, 'location');
  if (!location) throw urlFetchFailed('status', `upstream answered ${response.statusCode} without a Location`);
  return parseUrl(location, from);
}

function upstreamStatus(status: number): PixqError {
  return urlFetchFailed('status', `upstream answered HTTP ${status}`, {
    retryable: status === 429 || status >= 500,
    details: { upstreamStatus: status },
  });
}

/** Destroying an unread undici body emits an abort error; nobody is interested in it, so it must not go uncaught. */
export function discard(response: Dispatcher.ResponseData): void {
  response.body.on('error', () => {});
  response.body.destroy();
}

function header(response: Dispatcher.ResponseData, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function readLimited(response: Dispatcher.ResponseData, maxBytes: number): Promise<Buffer> {
  const declared = Number(header(response, 'content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    discard(response);
    throw payloadTooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      discard(response);
      throw payloadTooLarge(maxBytes);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/**
 * The socket's DNS lookup, where the address check lives. Because net.connect dials exactly what this returns,
 * the checked addresses are the connected ones.
 */
function guardedLookup(allowlist: Allowlist, resolve: Resolver): LookupFunction {
  return (hostname, options, callback) => {
    checkedAddresses(hostname, allowlist, resolve).then(
      (all) => {
        const family = familyOf(options);
        const usable = family ? all.filter((a) => a.family === family) : all;
        if (usable.length === 0) return callback(dnsFailure(hostname, `no IPv${family} address`), '', 0);
        if (options.all) return callback(null, usable);
        callback(null, usable[0].address, usable[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function familyOf(options: LookupOptions): 4 | 6 | undefined {
  const family = options.family as number | string | undefined;
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return undefined;
}

export async function checkedAddresses(
  hostname: string,
  allowlist: Allowlist,
  resolve: Resolver,
): Promise<LookupAddress[]> {
  let addresses: LookupAddress[];
  try {
    addresses = await resolve(hostname);
  } catch (err) {
    throw dnsFailure(hostname, (err as Error).message, err);
  }
  if (addresses.length === 0) throw dnsFailure(hostname, 'no addresses');
  if (isAllowlisted(hostname, allowlist)) return addresses;
  for (const { address } of addresses) {
    const range = forbiddenRange(address);
    if (range) {
      throw urlNotAllowed(`${hostname} resolves to ${address}, a ${range} address`, { host: hostname, address, range });
    }
  }
  return addresses;
}

function dnsFailure(hostname: string, why: string, cause?: unknown): PixqError {
  return urlFetchFailed('dns', `could not resolve ${hostname}: ${why}`, { retryable: true, cause });
}

const TIMEOUT_ERRORS = [
  undiciErrors.ConnectTimeoutError,
  undiciErrors.HeadersTimeoutError,
  undiciErrors.BodyTimeoutError,
];

/** Undici may wrap what our lookup threw; the first PixqError along the cause chain is the real reason. */
function findPixqError(err: unknown): PixqError | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PixqError) return e;
  }
  return undefined;
}

function normalizeError(
  err: unknown,
  ctx: { deadline: AbortSignal; caller: AbortSignal | undefined; timeoutMs: number },
): PixqError {
  const known = findPixqError(err);
  if (known) return known;
  if (ctx.caller?.aborted) return jobErrors.cancelled();
  if (ctx.deadline.aborted || TIMEOUT_ERRORS.some((type) => err instanceof type)) {
    return urlFetchFailed('timeout', `download did not finish within ${ctx.timeoutMs} ms`, {
      retryable: true,
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return urlFetchFailed('network', `download failed: ${message}`, { retryable: true, cause: err });
}

/**
 * The same checks as a download, without downloading: for refusing an unreachable or internal URL when a job
 * is submitted. The worker checks again on download, since DNS may answer differently by then.
 */
export async function checkUrlTarget(
  rawUrl: string,
  opts: { allowlist: readonly string[]; resolve?: Resolver },
): Promise<URL> {
  const allowlist = parseAllowlist(opts.allowlist);
  const url = parseUrl(rawUrl);
  assertLiteralAllowed(url, allowlist);
  if (!parseIp(url.hostname)) await checkedAddresses(url.hostname, allowlist, opts.resolve ?? defaultResolver);
  return url;
}
