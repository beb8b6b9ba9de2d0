/**
 * The job engine: everything about jobs that is not HTTP and not image processing. The API, the worker
 * runtime and the CLI use it; it uses only the store.
 */
import { isMigrated, openStore, migrate, type Store } from '../store/index.js';
import type { Config } from '../config.js';
import { ApiKeyService } from './api-keys.js';
import { EngineContext, type EngineOptions } from './context.js';
import { createLocalEventBus, createPostgresEventBus, type EventBus } from './event-bus.js';
import { JobService } from './jobs.js';
import { MaintenanceService } from './maintenance.js';
import { RateLimitService } from './rate-limits.js';
import { UploadService } from './uploads.js';
import { RegistryService } from './registry.js';
import { collectStats, type Stats } from './stats.js';
import { VendorService } from './vendors.js';
import { WorkService } from './work.js';

export type * from './types.js';
export type { EventBus } from './event-bus.js';
export type { EngineOptions } from './context.js';
export type { JobFilter, JobPage, BatchSummary } from './jobs.js';
export type { VendorSettings } from './vendors.js';
export type { WorkerHealth, JobTypeStatus } from './registry.js';
export type { Stats, Percentiles } from './stats.js';
export type { ApiKeyInfo } from './api-keys.js';
export type { Outcome } from './work.js';
export type { RateLimitRule, RateLimitOutcome } from './rate-limits.js';
export type { Upload } from './uploads.js';
export { backoffDelay } from './backoff.js';
export { FINISHED_STATES, JOB_STATES } from '../store/index.js';

export class Engine {
  readonly vendors: VendorService;
  readonly jobs: JobService;
  readonly work: WorkService;
  readonly maintenance: MaintenanceService;
  readonly registry: RegistryService;
  readonly apiKeys: ApiKeyService;
  readonly rateLimits: RateLimitService;
  readonly uploads: UploadService;

  private readonly ctx: EngineContext;

  constructor(
    readonly store: Store,
    readonly bus: EventBus,
    options: EngineOptions,
  ) {
    this.ctx = new EngineContext(store, bus, options);
    this.vendors = new VendorService(this.ctx);
    this.jobs = new JobService(this.ctx);
    this.work = new WorkService(this.ctx);
    this.maintenance = new MaintenanceService(this.ctx);
    this.registry = new RegistryService(this.ctx);
    this.apiKeys = new ApiKeyService(this.ctx);
    this.rateLimits = new RateLimitService(this.ctx);
    this.uploads = new UploadService(this.ctx);
  }

  get options(): EngineOptions {
    return this.ctx.options;
  }

  now(): number {
    return this.ctx.now();
  }

  /** Whether the store answers and has every migration applied: what `/readyz` reports. */
  async ready(): Promise<boolean> {
    return isMigrated(this.store).catch(() => false);
  }

  stats(windowMs: number, vendorId?: string): Promise<Stats> {
    return collectStats(this.ctx, windowMs, vendorId);
  }

  async close(): Promise<void> {
    await this.bus.close();
    await this.store.close();
  }
}

export function engineOptions(config: Config): EngineOptions {
  return {
    leaseMs: config.leaseMs,
    claimBatch: config.claimBatch,
    defaultMaxAttempts: config.defaultMaxAttempts,
    backoffBaseMs: config.backoffBaseMs,
    backoffMaxMs: config.backoffMaxMs,
    defaultTimeoutMs: config.defaultTimeoutMs,
  };
}

/** Opens the store named by the config, applies migrations, and starts the matching event bus. */
export async function openEngine(
  target: { databaseUrl?: string; dataDir: string },
  options: EngineOptions,
): Promise<Engine> {
  const store = await openStore(target);
  await migrate(store);
  const bus = store.pool ? await createPostgresEventBus(store.pool) : createLocalEventBus();
  return new Engine(store, bus, options);
}
