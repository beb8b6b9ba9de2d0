import { loadSigningSecret, openBlobStore, signBlobUrl, type BlobStore } from './blobs/index.js';
import type { Config } from './config.js';
import { engineOptions, openEngine, type Engine } from './engine/index.js';
import { parseAllowlist } from './intake/index.js';
import { createLogger, type Logger } from './log.js';
import { createProcessors, type Processor } from './processors/index.js';
import { migrate, openStore } from './store/index.js';
import { inputLoader, startMaintainer, startWebhookDeliverer, Worker } from './worker/index.js';

/** The parts every pixq process is made of, wired from one validated config (the composition root). */
export interface Services {
  config: Config;
  log: Logger;
  engine: Engine;
  blobs: BlobStore;
  processors: Map<string, Processor>;
  close(): Promise<void>;
}

export async function openServices(config: Config, log = createLogger(config.logLevel)): Promise<Services> {
  parseAllowlist(config.urlAllowlist); // a bad PIXQ_URL_ALLOWLIST entry fails at start, not at the first download
  const engine = await openEngine(config, engineOptions(config));
  engine.bus.onReconnect((info) =>
    log.warn({ component: 'event-bus', ...info }, 'event bus reconnected; missed events delivered'),
  );
  const blobs = openBlobStore(config, engine.blobs);
  await blobs.removeStaleTemp();
  const processors = createProcessors(config);
  const close = async () => {
    await Promise.all([...processors.values()].map((p) => p.close?.()));
    await engine.close();
  };
  return { config, log, engine, blobs, processors, close };
}

/** Slots per type: PIXQ_WORKER_CONCURRENCY (with its defaults) first, then what a processor declares. */
function workerSlots(processors: Map<string, Processor>, configured: Record<string, number>): Record<string, number> {
  const declared = [...processors.values()].flatMap((p) =>
    p.concurrency === undefined ? [] : [[p.type, p.concurrency]],
  );
  return { ...Object.fromEntries(declared), ...configured };
}

/**
 * Applies pending migrations on the configured store and returns their names. `pixq migrate` opens only the
 * store: opening the services would migrate first, and the command could then never say what it applied.
 */
export async function migrateStore(config: Config): Promise<string[]> {
  const store = await openStore(config);
  try {
    return await migrate(store);
  } finally {
    await store.close();
  }
}

/** Starts a worker and the housekeeping timers; the returned function stops both gracefully. */
export async function startWorker(services: Services): Promise<() => Promise<void>> {
  const { config, engine, blobs, log, processors } = services;
  for (const p of processors.values()) if (p.rateLimit) await engine.registry.defaultRateLimit(p.type, p.rateLimit);
  const worker = new Worker({
    engine,
    processors,
    concurrency: workerSlots(processors, config.workerConcurrency),
    blobs,
    log: log.child({ component: 'worker' }),
    loadInput: inputLoader(blobs, config),
    pollMs: config.pollMs,
    shutdownGraceMs: config.shutdownGraceMs,
  });
  await worker.start();
  const secret = await loadSigningSecret(config);
  const stopDeliverer = startWebhookDeliverer({
    engine,
    log: log.child({ component: 'webhooks' }),
    pollMs: config.pollMs,
    timeoutMs: config.webhooks.timeoutMs,
    concurrency: config.webhooks.concurrency,
    allowlist: config.urlAllowlist,
    deliveryBase: config.delivery.baseUrl ?? '',
    outputUrl: (vendorId, output) =>
      (config.publicUrl ?? '') +
      signBlobUrl(
        { key: output.blob, vendorId, contentType: output.contentType, expiresAt: Date.now() + config.signedUrlTtlMs },
        secret,
      ),
  });
  const stopMaintainer = startMaintainer({
    engine,
    blobs,
    log: log.child({ component: 'maintenance' }),
    pollMs: config.pollMs,
    retentionMs: config.retentionMs,
  });
  return async () => {
    stopMaintainer();
    await worker.stop();
    await stopDeliverer();
  };
}
