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

  it('serves every compatibility API by default; PIXQ_COMPAT picks some or none', () => {
    expect(loadConfig({})).toMatchObject({ compat: ['image-queue', 'queue', 'rembg'], compatAnonymousVendor: undefined, syncWaitMs: 60_000 });
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
    ['PIXQ_LOG_LEVEL', 'loud'],
    ['PIXQ_COMPAT', 'queue,bull'],
    ['PIXQ_COMPAT_ANONYMOUS_VENDOR', 'two words'],
    ['PIXQ_SYNC_WAIT_MS', '0'],
  ])('refuses a bad %s at start with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name} `));
  });
});
