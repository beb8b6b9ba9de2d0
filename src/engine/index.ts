/**
 * The job engine: everything about jobs that is not HTTP and not image processing. The API, the worker
 * runtime and the CLI use it; it uses only the store.
 */
import { isMigrated, openStore, migrate, type Store } from '../store/index.js';
import { loadConfig, type Config } from '../config.js';
import { ApiKeyService } from './api-keys.js';
import { AssetService } from './assets.js';
import { BlobLedgerService } from './blobs.js';
import { EngineContext, type EngineOptions } from './context.js';
import { DeliverySettingsService } from './delivery.js';
import { createPostgresEventBus, createSqliteEventBus, type EventBus } from './event-bus.js';
import { JobService } from './jobs.js';
import { MaintenanceService } from './maintenance.js';
import { RateLimitService } from './rate-limits.js';
import { UploadService } from './uploads.js';
import { RegistryService } from './registry.js';
import { collectSeries, collectStats, type SeriesBucket, type Stats } from './stats.js';
import { TemplateService } from './templates.js';
import { VariantCacheService } from './variants.js';
import { VendorService } from './vendors.js';
import { WebhookService, type WebhookSettings } from './webhooks.js';
import { WorkService } from './work.js';

export type * from './types.js';
export type { EventBus } from './event-bus.js';
export type { EngineOptions } from './context.js';
export type { BulkAction, JobFilter, JobPage, JobTarget, BatchSummary } from './jobs.js';
export type { VendorSettings } from './vendors.js';
export type { WorkerHealth, JobTypeStatus } from './registry.js';
export type { Stats, Percentiles, SeriesBucket } from './stats.js';
export type { ApiKeyInfo } from './api-keys.js';
export type { Outcome } from './work.js';
export type { RateLimitRule, RateLimitOutcome } from './rate-limits.js';
export type { Upload } from './uploads.js';
export type {
  WebhookEndpoint,
  WebhookDelivery,
  DeliveryTarget,
  AttemptResult,
  WebhookEventType,
  CallbackSecret,
} from './webhooks.js';
export type { Template, TemplateSettings } from './templates.js';
export type { AssetImage, AssetPage } from './assets.js';
export type { DeliverySettings, SigningPair } from './delivery.js';
export type { Variant } from './variants.js';
export { assetVersion, checkAssetPath, storageQuotaExceeded } from './assets.js';
export { newSigningPair, verifyingPairs } from './delivery.js';
export { WEBHOOK_EVENT_TYPES } from './webhooks.js';
export { backoffDelay } from './backoff.js';
export { SeenIds } from './seen-ids.js';
export { checkActive } from './vendors.js';
export { BLOB_GRACE_MS } from './blobs.js';
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
  readonly webhooks: WebhookService;
  readonly blobs: BlobLedgerService;
  readonly templates: TemplateService;
  readonly assets: AssetService;
  readonly delivery: DeliverySettingsService;
  readonly variants: VariantCacheService;

  private readonly ctx: EngineContext;

  constructor(
    readonly store: Store,
    readonly bus: EventBus,
    options: EngineOptions,
  ) {
    this.ctx = new EngineContext(store, bus, options);
    this.blobs = new BlobLedgerService(this.ctx);
    this.vendors = new VendorService(this.ctx);
    this.jobs = new JobService(this.ctx);
    this.work = new WorkService(this.ctx, this.blobs);
    this.maintenance = new MaintenanceService(this.ctx, this.blobs);
    this.registry = new RegistryService(this.ctx);
    this.apiKeys = new ApiKeyService(this.ctx);
    this.rateLimits = new RateLimitService(this.ctx);
    this.uploads = new UploadService(this.ctx, this.blobs, { defaultMaxBytes: options.maxStorageBytes ?? null });
    this.webhooks = new WebhookService(this.ctx, options.webhooks ?? DEFAULT_WEBHOOK_SETTINGS);
    this.templates = new TemplateService(this.ctx);
    this.assets = new AssetService(this.ctx, this.blobs, { defaultMaxBytes: options.maxStorageBytes ?? null });
    this.delivery = new DeliverySettingsService(this.ctx, ROTATION_OVERLAP_MS);
    this.variants = new VariantCacheService(this.ctx, this.blobs);
  }

  get options(): EngineOptions {
    return this.ctx.options;
  }

  /** Whether the store answers and has every migration applied, and if not, why: what `/readyz` reports. */
  async readiness(): Promise<{ ready: true } | { ready: false; reason: string }> {
    try {
      if (await isMigrated(this.store)) return { ready: true };
      return { ready: false, reason: 'the database is missing migrations (run pixq migrate)' };
    } catch (err) {
      return { ready: false, reason: `the database is unreachable: ${(err as Error).message}` };
    }
  }

  stats(windowMs: number, vendorId?: string): Promise<Stats> {
    return collectStats(this.ctx, windowMs, vendorId);
  }

  /** Per-minute finished and failed counts with wait/run percentiles over the last `minutes` minutes. */
  statsSeries(minutes: number, vendorId?: string): Promise<SeriesBucket[]> {
    return collectSeries(this.ctx, minutes, vendorId);
  }

  async close(): Promise<void> {
    await this.bus.close();
    await this.store.close();
  }
}

// A rotated-out webhook secret keeps signing alongside the new one this long, as a rotated delivery key verifies.
const ROTATION_OVERLAP_MS = 24 * 3_600_000;

function webhookSettings(config: Config): WebhookSettings {
  const { retryScheduleMs, disableAfterMs, maxEndpointsPerVendor } = config.webhooks;
  return { retryScheduleMs, disableAfterMs, maxEndpointsPerVendor, rotationOverlapMs: ROTATION_OVERLAP_MS };
}

/** For engines built without a config (tests): the configuration's defaults. */
const DEFAULT_WEBHOOK_SETTINGS = webhookSettings(loadConfig({}));

export function engineOptions(config: Config): EngineOptions {
  return {
    webhooks: webhookSettings(config),
    eventPollMs: config.pollMs,
    leaseMs: config.leaseMs,
    claimBatch: config.claimBatch,
    defaultMaxAttempts: config.defaultMaxAttempts,
    backoffBaseMs: config.backoffBaseMs,
    backoffMaxMs: config.backoffMaxMs,
    defaultTimeoutMs: config.defaultTimeoutMs,
    maxStorageBytes: config.maxStorageBytes ?? null,
  };
}

/** Opens the store named by the config, applies migrations, and starts the matching event bus. */
export async function openEngine(
  target: { databaseUrl?: string; dataDir: string; dbTimeoutMs?: number },
  options: EngineOptions,
): Promise<Engine> {
  const store = await openStore({ ...target, timeoutMs: target.dbTimeoutMs });
  await migrate(store);
  const bus = store.pool ? await createPostgresEventBus(store) : await createSqliteEventBus(store, options.eventPollMs);
  return new Engine(store, bus, options);
}
