import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8080, leaseMs: 30_000, defaultMaxAttempts: 3, enableNoop: false, maxPixels: 40_000_000 });
    expect(config.rateLimits.image).toEqual({ limit: 50, windowMs: 15 * 60_000 });
    expect(config.rateLimits.removeBackground).toEqual({ limit: 30, windowMs: 3_600_000 });
    expect(config.workerConcurrency['remove-background']).toBe(1);
  });

  it('reads PIXQ_WORKER_CONCURRENCY over the defaults', () => {
    expect(loadConfig({ PIXQ_WORKER_CONCURRENCY: 'noop=8, face-crop=3' }).workerConcurrency).toMatchObject({ noop: 8, 'face-crop': 3, transform: 2 });
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
    const minio = { PIXQ_S3_BUCKET: 'b1b', PIXQ_S3_ENDPOINT: 'http://minio:9000', PIXQ_S3_FORCE_PATH_STYLE: '1', PIXQ_S3_PRESIGN: '0', AWS_REGION: 'eu-west-1' };
    expect(loadConfig(minio).s3).toMatchObject({ endpoint: 'http://minio:9000', forcePathStyle: true, presign: false, region: 'eu-west-1' });
  });

  it.each([
    ['PIXQ_S3_BUCKET', 'Not_A_Bucket'],
    ['PIXQ_S3_ENDPOINT', 'minio:9000'],
    ['PIXQ_S3_PRESIGN', 'sometimes'],
  ])('refuses a bad %s (with a bucket set) naming it', (name, value) => {
    expect(() => loadConfig({ PIXQ_S3_BUCKET: 'pixq', [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name} `));
  });

  it.each([
    ['PORT', 'eighty'],
    ['PIXQ_LEASE_MS', '10'],
    ['PIXQ_ENABLE_NOOP', 'maybe'],
    ['PIXQ_WORKER_CONCURRENCY', 'noop:4'],
    ['PIXQ_RATE_IMAGE', '50 per minute'],
    ['DATABASE_URL', 'mysql://x'],
    ['PIXQ_ADMIN_KEY', 'short'],
    ['PIXQ_LOG_LEVEL', 'loud'],
  ])('refuses a bad %s at start with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name} `));
  });
});
