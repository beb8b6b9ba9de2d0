import os from 'node:os';
import path from 'node:path';
import { API_KEY_LIMITS, JOB_LIMITS } from './engine/limits.js';

/**
 * All of pixq's configuration, read once from environment variables and validated.
 * Every variable is documented in the README's configuration table; a bad value fails at start
 * with a message naming the variable.
 */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** The S3-compatible bucket blobs go to instead of the data directory (PIXQ_S3_BUCKET set). */
export interface S3Config {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  prefix: string;
  presign: boolean;
}

export interface Config {
  dataDir: string;
  databaseUrl: string | undefined;
  dbTimeoutMs: number;
  port: number;
  host: string;
  adminKey: string | undefined;
  logLevel: string;
  enableNoop: boolean;
  workerConcurrency: Record<string, number>;
  leaseMs: number;
  shutdownGraceMs: number;
  pollMs: number;
  claimBatch: number;
  retentionMs: number;
  defaultMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  defaultTimeoutMs: number;
  maxUploadBytes: number;
  maxBulkFiles: number;
  maxPixels: number;
  urlAllowlist: string[];
  urlTimeoutMs: number;
  trustProxy: boolean;
  signingSecret: string | undefined;
  signedUrlTtlMs: number;
  /** Where callers reach the API (`https://pixq.example.com`), for absolute URLs in webhooks; unset: relative. */
  publicUrl: string | undefined;
  rateLimits: {
    /** Renders of delivery variants not yet cached, per vendor. */
    render: RateLimit;
    requests: RateLimit;
    image: RateLimit;
    removeBackground: RateLimit;
    bulk: RateLimit;
    anonymous: RateLimit;
  };
  sseHeartbeatMs: number;
  /** Bytes a live event stream may hold unsent for a slow client before it is ended (to resume by Last-Event-ID). */
  sseMaxUnsentBytes: number;
  /** Browser origins allowed to call the API (CORS); `*` for any. */
  corsOrigins: string[];
  maxStreamsPerVendor: number;
  requestTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  modelsDir: string;
  onnxProvider: string;
  onnxThreads: number;
  modelIdleMs: number;
  modelDownload: boolean;
  rembgServers: RembgServer[];
  removeBackgroundBackend: RemoveBackgroundBackend;
  rembgTimeoutMs: number;
  rembgHealthMs: number;
  rembgBreakerFailures: number;
  webhooks: {
    /** Delay before each delivery attempt (the first normally 0). */
    retryScheduleMs: number[];
    timeoutMs: number;
    disableAfterMs: number;
    concurrency: number;
    maxEndpointsPerVendor: number;
  };
  /** The label-analysis `anthropic` provider: the SDK's own variables plus the model pixq asks for. */
  anthropic: { apiKey: string | undefined; baseUrl: string | undefined; model: string };
  s3: S3Config | undefined;
  /** Compatibility APIs of the systems pixq replaces that this process serves (see src/api/compat). */
  compat: CompatApi[];
  /** Vendor (by name) that keyless callers of the compatibility APIs act as; undefined: they need a key. */
  compatAnonymousVendor: string | undefined;
  /** How long a synchronous answer (rembg's /api/remove) waits for its job before answering 504. */
  syncWaitMs: number;
  /** Serve the web dashboard (web/dist) at `/`. */
  dashboard: boolean;
  /** The storage quota (uploads and assets) of vendors without one of their own; undefined: none. */
  maxStorageBytes: number | undefined;
  /** The marketplace compat queue publishes its outputs as assets, so `result.outputUrl` is permanent. */
  compatPublish: boolean;
  delivery: DeliveryConfig;
}

/** Asset delivery (src/delivery): where its URLs point, its cache, its renders. */
export interface DeliveryConfig {
  /** The base delivery URLs are built on (a CDN in front of pixq); default PIXQ_PUBLIC_URL, else relative. */
  baseUrl: string | undefined;
  /** The most bytes rendered variants may take in the blob store; least recently used ones go first. */
  cacheBytes: number;
  /** Variant bytes each process keeps in memory for hits. */
  memoryBytes: number;
  /** Renders one process runs at once, so they cannot starve job workers of CPU. */
  concurrency: number;
  /** max-age of answers to URLs without the asset's current version (those with it are immutable). */
  maxAgeS: number;
  /** Formats chosen by `Accept` when a URL names none, in order of preference. */
  formats: ('avif' | 'webp')[];
}

/** A remote rembg server (`rembg s`) and how many calls this process may have in flight on it. */
export interface RembgServer {
  /** Base URL, ending in `/`; the API lives under `api/remove` below it. */
  url: string;
  concurrency: number;
}

export const REMOVE_BACKGROUND_BACKENDS = ['local', 'rembg'] as const;
export type RemoveBackgroundBackend = (typeof REMOVE_BACKGROUND_BACKENDS)[number];

/** The compatibility APIs, by PIXQ_COMPAT name; each is a plugin in src/api/compat/. */
export const COMPAT_APIS = ['image-queue', 'queue', 'rembg', 'removebg', 'scans'] as const;
export type CompatApi = (typeof COMPAT_APIS)[number];

export class ConfigError extends Error {
  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function decimal(env: Env, name: string, fallback: number, min: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new ConfigError(name, `must be a number >= ${min}, got "${raw}"`);
  return value;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false (1/0), got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function httpUrl(env: Env, name: string): string | undefined {
  const raw = read(env, name);
  if (raw !== undefined && !/^https?:\/\/[^\s/]+/.test(raw))
    throw new ConfigError(name, `must be an http(s) URL, got "${raw}"`);
  return raw;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a rate such as `50/15m` (50 requests per 15 minutes). */
export function parseRate(name: string, raw: string): RateLimit {
  const match = /^(\d+)\/(\d*)([smhd])$/.exec(raw.trim());
  if (!match) throw new ConfigError(name, `must look like 50/15m (count/window with unit s, m, h or d), got "${raw}"`);
  const limit = Number(match[1]);
  const windowMs = Number(match[2] || '1') * UNIT_MS[match[3]];
  if (limit < 1 || windowMs < 1000) throw new ConfigError(name, `must allow at least 1 request per 1s, got "${raw}"`);
  return { limit, windowMs };
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parses a size such as `2G`, `512M` or `1048576` (K, M, G, T are powers of 1024). */
export function parseBytes(name: string, raw: string): number {
  const match = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(raw.trim());
  if (!match) throw new ConfigError(name, `must be a size such as 2G, 512M or 1048576, got "${raw}"`);
  const value = Number(match[1]) * BYTE_UNITS[match[2].toLowerCase()];
  if (!Number.isSafeInteger(value)) throw new ConfigError(name, `is too large, got "${raw}"`);
  return value;
}

function bytes(env: Env, name: string, fallback: string): number;
function bytes(env: Env, name: string, fallback: undefined): number | undefined;
function bytes(env: Env, name: string, fallback: string | undefined): number | undefined {
  const raw = read(env, name) ?? fallback;
  return raw === undefined ? undefined : parseBytes(name, raw);
}

const NEGOTIABLE_FORMATS = ['avif', 'webp'] as const;

/** Parses PIXQ_DELIVERY_FORMATS: `avif,webp` (the default), `webp`, or `none`. */
export function parseDeliveryFormats(name: string, raw: string): ('avif' | 'webp')[] {
  if (raw.trim().toLowerCase() === 'none') return [];
  const formats = raw
    .split(',')
    .map((f) => f.trim().toLowerCase())
    .filter(Boolean);
  for (const f of formats) {
    if (!(NEGOTIABLE_FORMATS as readonly string[]).includes(f)) {
      throw new ConfigError(name, `must list avif and/or webp (or be none), got "${f}"`);
    }
  }
  return [...new Set(formats)] as ('avif' | 'webp')[];
}

function deliveryConfig(env: Env, publicBase: string | undefined): DeliveryConfig {
  const baseUrl = read(env, 'PIXQ_DELIVERY_URL');
  if (baseUrl !== undefined && !/^https?:\/\/[^\s/]+/.test(baseUrl)) {
    throw new ConfigError(
      'PIXQ_DELIVERY_URL',
      `must be an http(s) URL such as https://cdn.example.com, got "${baseUrl}"`,
    );
  }
  return {
    baseUrl: (baseUrl ?? publicBase)?.replace(/\/+$/, ''),
    cacheBytes: bytes(env, 'PIXQ_DELIVERY_CACHE_BYTES', '2G'),
    memoryBytes: bytes(env, 'PIXQ_DELIVERY_MEMORY_BYTES', '64M'),
    concurrency: integer(
      env,
      'PIXQ_DELIVERY_CONCURRENCY',
      Math.max(1, Math.floor(os.availableParallelism() / 2)),
      1,
      64,
    ),
    maxAgeS: integer(env, 'PIXQ_DELIVERY_MAX_AGE_S', 300, 0, 31_536_000),
    formats: parseDeliveryFormats('PIXQ_DELIVERY_FORMATS', read(env, 'PIXQ_DELIVERY_FORMATS') ?? 'avif,webp'),
  };
}

function rate(env: Env, name: string, fallback: string): RateLimit {
  return parseRate(name, read(env, name) ?? fallback);
}

/** Parses a list of durations such as `0,5s,5m,2h` (a bare number is milliseconds). */
export function parseDurations(name: string, raw: string): number[] {
  return raw.split(',').map((part) => {
    const match = /^(\d+)(ms|[smhd])?$/.exec(part.trim());
    if (!match) throw new ConfigError(name, `must be a list like 0,5s,5m,2h (ms, s, m, h or d), got "${part.trim()}"`);
    return Number(match[1]) * (match[2] === undefined || match[2] === 'ms' ? 1 : UNIT_MS[match[2]]);
  });
}

// Standard Webhooks' retry schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h later.
const WEBHOOK_SCHEDULE = '0,5s,5m,30m,2h,5h,10h,14h,20h,24h';

/** Parses `noop=4,remove-background=1` into a map of job type to worker slots. */
export function parseConcurrency(name: string, raw: string): Record<string, number> {
  const result: Record<string, number> = {};
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(part);
    if (!match) throw new ConfigError(name, `must be a list like noop=4,remove-background=1, got "${part}"`);
    const slots = Number(match[2]);
    if (slots > 1000) throw new ConfigError(name, `allows at most 1000 slots per type, got ${slots} for ${match[1]}`);
    result[match[1]] = slots;
  }
  return result;
}

const MAX_REMBG_CONCURRENCY = 256;

/**
 * Parses `http://a:7000,http://b:7000#4` (a base URL per server, optionally `#` and its concurrency, 1 by
 * default). The servers are the operator's own, often on private addresses, so no address policy applies;
 * the URLs must still be plain http(s) bases: no credentials (they would end up in logs), query or duplicates.
 */
export function parseRembgUrls(name: string, raw: string): RembgServer[] {
  const servers: RembgServer[] = [];
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [address, slots, ...rest] = part.split('#');
    if (rest.length > 0) throw new ConfigError(name, `has more than one # in "${part}"`);
    const concurrency = slots === undefined ? 1 : Number(slots);
    if (!/^\d+$/.test(slots ?? '1') || concurrency < 1 || concurrency > MAX_REMBG_CONCURRENCY) {
      throw new ConfigError(name, `needs a concurrency from 1 to ${MAX_REMBG_CONCURRENCY} after #, got "${part}"`);
    }
    const url = rembgBase(name, address);
    if (servers.some((s) => s.url === url)) throw new ConfigError(name, `names ${url} twice`);
    servers.push({ url, concurrency });
  }
  return servers;
}

function rembgBase(name: string, address: string): string {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new ConfigError(name, `has "${address}", which is not an absolute URL such as http://rembg:7000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `has "${address}": only http and https servers are supported`);
  }
  if (url.username || url.password) {
    throw new ConfigError(name, `has "${address}": credentials in the URL are not accepted`);
  }
  if (url.search) throw new ConfigError(name, `has "${address}": a server URL takes no query`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url.href;
}

function removeBackgroundBackend(env: Env, servers: RembgServer[]): RemoveBackgroundBackend {
  const name = 'PIXQ_REMOVE_BACKGROUND_BACKEND';
  const backend = oneOf(env, name, 'local', REMOVE_BACKGROUND_BACKENDS);
  if (backend === 'rembg' && servers.length === 0) {
    throw new ConfigError(name, 'is rembg but PIXQ_REMBG_URLS names no server');
  }
  return backend;
}

function publicUrl(env: Env): string | undefined {
  const raw = read(env, 'PIXQ_PUBLIC_URL');
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('PIXQ_PUBLIC_URL', `must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError('PIXQ_PUBLIC_URL', `must be http or https, got "${raw}"`);
  return url.href.replace(/\/+$/, '');
}

/** Parses `https://app.example.com,http://localhost:5173` (or `*`) into exact origins. */
export function parseOrigins(name: string, raw: string): string[] {
  const origins = raw
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    if (origin === '*') continue;
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    if (parsed?.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
      throw new ConfigError(
        name,
        `must list origins like https://app.example.com (scheme, host, port; no path), got "${origin}"`,
      );
    }
  }
  return origins;
}

function s3Config(env: Env): S3Config | undefined {
  const bucket = read(env, 'PIXQ_S3_BUCKET');
  if (bucket === undefined) return undefined;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError(
      'PIXQ_S3_BUCKET',
      `must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens), got "${bucket}"`,
    );
  }
  const endpoint = read(env, 'PIXQ_S3_ENDPOINT');
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    throw new ConfigError('PIXQ_S3_ENDPOINT', `must be an http(s) URL such as http://minio:9000, got "${endpoint}"`);
  }
  return {
    bucket,
    endpoint,
    region: read(env, 'PIXQ_S3_REGION') ?? read(env, 'AWS_REGION') ?? 'us-east-1',
    forcePathStyle: flag(env, 'PIXQ_S3_FORCE_PATH_STYLE', false),
    prefix: read(env, 'PIXQ_S3_PREFIX') ?? '',
    presign: flag(env, 'PIXQ_S3_PRESIGN', true),
  };
}

/** Parses PIXQ_COMPAT: `all`, `none`, or a list such as `queue,rembg`. */
export function parseCompat(name: string, raw: string): CompatApi[] {
  const value = raw.trim().toLowerCase();
  if (value === 'all') return [...COMPAT_APIS];
  if (value === 'none') return [];
  const names = value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(COMPAT_APIS as readonly string[]).includes(n)) {
      throw new ConfigError(name, `must be all, none or a list of ${COMPAT_APIS.join(', ')}; got "${n}"`);
    }
  }
  return [...new Set(names)] as CompatApi[];
}

const DEFAULT_CONCURRENCY = 'noop=4,transform=2,face-crop=2,pipeline=1';

function vendorName(env: Env, name: string): string | undefined {
  const raw = read(env, name);
  if (raw !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(raw)) {
    throw new ConfigError(name, `must be a vendor name (letters, digits, dots, dashes, underscores), got "${raw}"`);
  }
  return raw;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(read(env, 'PIXQ_DATA_DIR') ?? './data');
  const databaseUrl = read(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must start with postgres:// (leave it unset for the embedded SQLite store)');
  }
  const adminKey = read(env, 'PIXQ_ADMIN_KEY');
  if (adminKey !== undefined && adminKey.length < 16) {
    throw new ConfigError('PIXQ_ADMIN_KEY', 'must be at least 16 characters long');
  }
  if (adminKey !== undefined && adminKey.length > API_KEY_LIMITS.maxLength) {
    throw new ConfigError('PIXQ_ADMIN_KEY', `must be at most ${API_KEY_LIMITS.maxLength} characters long`);
  }
  if (adminKey !== undefined && !API_KEY_LIMITS.characters.test(adminKey)) {
    throw new ConfigError('PIXQ_ADMIN_KEY', 'must be printable ASCII characters (letters, digits, punctuation)');
  }
  const signingSecret = read(env, 'PIXQ_SIGNING_SECRET');
  if (signingSecret !== undefined && signingSecret.length < 16) {
    throw new ConfigError('PIXQ_SIGNING_SECRET', 'must be at least 16 characters long');
  }
  const workerConcurrency = {
    ...parseConcurrency('PIXQ_WORKER_CONCURRENCY', DEFAULT_CONCURRENCY),
    ...parseConcurrency('PIXQ_WORKER_CONCURRENCY', read(env, 'PIXQ_WORKER_CONCURRENCY') ?? ''),
  };
  const leaseMs = integer(env, 'PIXQ_LEASE_MS', 30_000, 1000);
  const rembgServers = parseRembgUrls('PIXQ_REMBG_URLS', read(env, 'PIXQ_REMBG_URLS') ?? '');
  const publicBase = publicUrl(env);
  return {
    dataDir,
    databaseUrl,
    dbTimeoutMs: integer(env, 'PIXQ_DB_TIMEOUT_MS', 30_000, 100),
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: read(env, 'HOST') ?? '0.0.0.0',
    adminKey,
    logLevel: oneOf(env, 'PIXQ_LOG_LEVEL', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    enableNoop: flag(env, 'PIXQ_ENABLE_NOOP', false),
    workerConcurrency,
    leaseMs,
    shutdownGraceMs: integer(env, 'PIXQ_SHUTDOWN_GRACE_MS', 25_000, 0),
    pollMs: integer(env, 'PIXQ_POLL_MS', 1000, 10),
    claimBatch: integer(env, 'PIXQ_CLAIM_BATCH', 32, 1, 1000),
    retentionMs: decimal(env, 'PIXQ_RETENTION_DAYS', 7, 0) * UNIT_MS.d,
    defaultMaxAttempts: integer(env, 'PIXQ_MAX_ATTEMPTS', 3, JOB_LIMITS.maxAttempts.min, JOB_LIMITS.maxAttempts.max),
    backoffBaseMs: integer(env, 'PIXQ_BACKOFF_MS', 1000, 0),
    backoffMaxMs: integer(env, 'PIXQ_BACKOFF_MAX_MS', 300_000, 0),
    defaultTimeoutMs: integer(env, 'PIXQ_JOB_TIMEOUT_MS', 300_000, JOB_LIMITS.timeoutMs.min, JOB_LIMITS.timeoutMs.max),
    maxUploadBytes: integer(env, 'PIXQ_MAX_UPLOAD_BYTES', 25 * 1024 * 1024, 1024),
    maxBulkFiles: integer(env, 'PIXQ_MAX_BULK_FILES', 100, 1, 10_000),
    maxPixels: integer(env, 'PIXQ_MAX_PIXELS', 40_000_000, 1),
    urlAllowlist: (read(env, 'PIXQ_URL_ALLOWLIST') ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
    urlTimeoutMs: integer(env, 'PIXQ_URL_TIMEOUT_MS', 15_000, 100),
    trustProxy: flag(env, 'PIXQ_TRUST_PROXY', false),
    signingSecret,
    signedUrlTtlMs: integer(env, 'PIXQ_SIGNED_URL_TTL_S', 900, 1) * 1000,
    publicUrl: publicBase,
    rateLimits: {
      render: rate(env, 'PIXQ_RATE_RENDER', '600/1m'),
      requests: rate(env, 'PIXQ_RATE_REQUESTS', '1000/1m'),
      image: rate(env, 'PIXQ_RATE_IMAGE', '50/15m'),
      removeBackground: rate(env, 'PIXQ_RATE_REMOVE_BACKGROUND', '30/1h'),
      bulk: rate(env, 'PIXQ_RATE_BULK', '10/1h'),
      anonymous: rate(env, 'PIXQ_RATE_ANONYMOUS', '100/15m'),
    },
    sseHeartbeatMs: integer(env, 'PIXQ_SSE_HEARTBEAT_MS', 15_000, 100),
    sseMaxUnsentBytes: integer(env, 'PIXQ_SSE_MAX_UNSENT_BYTES', 1024 * 1024, 16 * 1024),
    corsOrigins: parseOrigins('PIXQ_CORS_ORIGINS', read(env, 'PIXQ_CORS_ORIGINS') ?? ''),
    maxStreamsPerVendor: integer(env, 'PIXQ_MAX_STREAMS_PER_VENDOR', 20, 1, 100_000),
    requestTimeoutMs: integer(env, 'PIXQ_REQUEST_TIMEOUT_MS', 300_000, 100),
    bodyIdleTimeoutMs: integer(env, 'PIXQ_BODY_IDLE_TIMEOUT_MS', 30_000, 100),
    modelsDir: path.resolve(read(env, 'PIXQ_MODELS_DIR') ?? path.join(dataDir, 'models')),
    onnxProvider: read(env, 'PIXQ_ONNX_PROVIDER') ?? 'cpu',
    onnxThreads: integer(env, 'PIXQ_ONNX_THREADS', Math.max(1, os.availableParallelism()), 1, 256),
    modelIdleMs: integer(env, 'PIXQ_MODEL_IDLE_MS', 600_000, 1000),
    modelDownload: flag(env, 'PIXQ_MODEL_DOWNLOAD', true),
    rembgServers,
    removeBackgroundBackend: removeBackgroundBackend(env, rembgServers),
    rembgTimeoutMs: integer(env, 'PIXQ_REMBG_TIMEOUT_MS', 60_000, 100),
    rembgHealthMs: integer(env, 'PIXQ_REMBG_HEALTH_MS', 10_000, 100),
    rembgBreakerFailures: integer(env, 'PIXQ_REMBG_BREAKER_FAILURES', 3, 1, 1000),
    webhooks: {
      retryScheduleMs: parseDurations(
        'PIXQ_WEBHOOK_RETRY_SCHEDULE',
        read(env, 'PIXQ_WEBHOOK_RETRY_SCHEDULE') ?? WEBHOOK_SCHEDULE,
      ),
      timeoutMs: integer(env, 'PIXQ_WEBHOOK_TIMEOUT_MS', 15_000, 100),
      disableAfterMs: decimal(env, 'PIXQ_WEBHOOK_DISABLE_AFTER_DAYS', 5, 0) * UNIT_MS.d,
      concurrency: integer(env, 'PIXQ_WEBHOOK_CONCURRENCY', 8, 1, 256),
      maxEndpointsPerVendor: integer(env, 'PIXQ_WEBHOOK_MAX_ENDPOINTS', 20, 1, 1000),
    },
    anthropic: {
      apiKey: read(env, 'ANTHROPIC_API_KEY'),
      baseUrl: httpUrl(env, 'ANTHROPIC_BASE_URL'),
      model: read(env, 'PIXQ_LLM_MODEL') ?? 'claude-sonnet-4-5',
    },
    s3: s3Config(env),
    compat: parseCompat('PIXQ_COMPAT', read(env, 'PIXQ_COMPAT') ?? 'all'),
    compatAnonymousVendor: vendorName(env, 'PIXQ_COMPAT_ANONYMOUS_VENDOR'),
    syncWaitMs: integer(env, 'PIXQ_SYNC_WAIT_MS', 60_000, 1, 3_600_000),
    dashboard: flag(env, 'PIXQ_DASHBOARD', true),
    maxStorageBytes: bytes(env, 'PIXQ_MAX_STORAGE_BYTES', undefined),
    compatPublish: flag(env, 'PIXQ_COMPAT_PUBLISH', true),
    delivery: deliveryConfig(env, publicBase),
  };
}
