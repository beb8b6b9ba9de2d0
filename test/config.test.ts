import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      leaseMs: 30_000,
      defaultMaxAttempts: 3,
      enableNoop: false,
      maxPixels: 40_000_000,
    });
    expect(config.rateLimits.image).toEqual({ limit: 50, windowMs: 15 * 60_000 });
    expect(config.rateLimits.removeBackground).toEqual({ limit: 30, windowMs: 3_600_000 });
    // remove-background declares its own slots (by the core count); the configuration leaves them to it.
    expect(config.workerConcurrency['remove-background']).toBeUndefined();
    expect(config.anthropic).toEqual({ apiKey: undefined, baseUrl: undefined, model: 'claude-sonnet-4-5' });
    expect(config).toMatchObject({ maxStreamsPerVendor: 20, requestTimeoutMs: 300_000, bodyIdleTimeoutMs: 30_000 });
  });

  it('takes an admin key as long as auth compares', () => {
    expect(loadConfig({ PIXQ_ADMIN_KEY: 'k'.repeat(200) }).adminKey).toHaveLength(200);
  });

  it('reads PIXQ_WORKER_CONCURRENCY over the defaults', () => {
    expect(loadConfig({ PIXQ_WORKER_CONCURRENCY: 'noop=8, face-crop=3' }).workerConcurrency).toMatchObject({
      noop: 8,
      'face-crop': 3,
      transform: 2,
    });
  });

  it('reads PIXQ_CORS_ORIGINS as exact origins, none by default', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ PIXQ_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
  });

  it('selects the S3 store only with PIXQ_S3_BUCKET, with its defaults', () => {
    expect(loadConfig({}).s3).toBeUndefined();
    expect(loadConfig({ PIXQ_S3_BUCKET: 'pixq-blobs' }).s3).toEqual({
      bucket: 'pixq-blobs',
      endpoint: undefined,
      region: 'us-east-1',
      forcePathStyle: false,
      prefix: '',
      presign: true,
    });
    const minio = {
      PIXQ_S3_BUCKET: 'b1b',
      PIXQ_S3_ENDPOINT: 'http://minio:9000',
      PIXQ_S3_FORCE_PATH_STYLE: '1',
      PIXQ_S3_PRESIGN: '0',
      AWS_REGION: 'eu-west-1',
    };
    expect(loadConfig(minio).s3).toMatchObject({
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
      presign: false,
      region: 'eu-west-1',
    });
  });

  it.each([
    ['PIXQ_S3_BUCKET', 'Not_A_Bucket'],
    ['PIXQ_S3_ENDPOINT', 'minio:9000'],
    ['PIXQ_S3_PRESIGN', 'sometimes'],
  ])('refuses a bad %s (with a bucket set) naming it', (name, value) => {
    expect(() => loadConfig({ PIXQ_S3_BUCKET: 'pixq', [name]: value })).toThrow(
      new RegExp(`^invalid configuration: ${name} `),
    );
  });

  it('serves every compatibility API by default; PIXQ_COMPAT picks some or none', () => {
    expect(loadConfig({})).toMatchObject({
      compat: ['image-queue', 'queue', 'rembg', 'removebg', 'scans'],
      compatAnonymousVendor: undefined,
      syncWaitMs: 60_000,
    });
    expect(loadConfig({ PIXQ_COMPAT: 'rembg, queue' }).compat).toEqual(['rembg', 'queue']);
    expect(loadConfig({ PIXQ_COMPAT: 'none' }).compat).toEqual([]);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PIXQ_LEASE_MS', '10'],
    ['PIXQ_ENABLE_NOOP', 'maybe'],
    ['PIXQ_WORKER_CONCURRENCY', 'noop:4'],
    ['PIXQ_RATE_IMAGE', '50 per minute'],
    ['DATABASE_URL', 'mysql://x'],
    ['PIXQ_ADMIN_KEY', 'short'],
    // Longer than any key auth compares, or outside printable ASCII (clients encode it in a header each their own
    // way): a key that would never match.
    ['PIXQ_ADMIN_KEY', 'k'.repeat(201)],
    ['PIXQ_ADMIN_KEY', 'schlüssel-für-den-admin'],
    ['PIXQ_ADMIN_KEY', 'admin-key-with\u0007bell-0123'],
    ['PIXQ_LOG_LEVEL', 'loud'],
    ['PIXQ_REMBG_URLS', 'ftp://a:7000'],
    ['PIXQ_REMBG_URLS', 'rembg:7000'],
    ['PIXQ_REMBG_URLS', 'http://user:pw@a:7000'],
    ['PIXQ_REMBG_URLS', 'http://a:7000/?x=1'],
    ['PIXQ_REMBG_URLS', 'http://a:7000#0'],
    ['PIXQ_REMBG_URLS', 'http://a:7000#two'],
    ['PIXQ_REMBG_URLS', 'http://a:7000,http://a:7000/'],
    ['PIXQ_REMOVE_BACKGROUND_BACKEND', 'gpu'],
    ['PIXQ_REMOVE_BACKGROUND_BACKEND', 'rembg'],
    ['PIXQ_REMBG_TIMEOUT_MS', '5'],
    ['ANTHROPIC_BASE_URL', 'api.anthropic.com'],
    ['PIXQ_CORS_ORIGINS', 'https://app.example.com/path'],
    ['PIXQ_CORS_ORIGINS', 'app.example.com'],
    ['PIXQ_MAX_STREAMS_PER_VENDOR', '0'],
    ['PIXQ_REQUEST_TIMEOUT_MS', '5s'],
    ['PIXQ_BODY_IDLE_TIMEOUT_MS', '10'],
    ['PIXQ_COMPAT', 'queue,bull'],
    ['PIXQ_COMPAT_ANONYMOUS_VENDOR', 'two words'],
    ['PIXQ_SYNC_WAIT_MS', '0'],
  ])('refuses a bad %s at start with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name} `));
  });

  it('reads the rembg servers with their concurrency, and lets rembg be the default backend only with servers', () => {
    const config = loadConfig({
      PIXQ_REMBG_URLS: 'http://a:7000, https://gpu.internal/rembg#4',
      PIXQ_REMOVE_BACKGROUND_BACKEND: 'rembg',
    });
    expect(config.rembgServers).toEqual([
      { url: 'http://a:7000/', concurrency: 1 },
      { url: 'https://gpu.internal/rembg/', concurrency: 4 },
    ]);
    expect(config.removeBackgroundBackend).toBe('rembg');
    expect(loadConfig({}).removeBackgroundBackend).toBe('local');
    expect(loadConfig({}).rembgServers).toEqual([]);
  });
});
