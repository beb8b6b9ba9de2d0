import { FsBlobStore } from './blobs/index.js';
import type { Config } from './config.js';
import { engineOptions, openEngine, type Engine } from './engine/index.js';
import { parseAllowlist } from './intake/index.js';
import { createLogger, type Logger } from './log.js';
import { createProcessors, type Processor } from './processors/index.js';
import { migrate, openStore } from './store/index.js';
import { inputLoader, startMaintainer, Worker } from './worker/index.js';

/** The parts every pixq process is made of, wired from one validated config (the composition root). */
export interface Services {
  config: Config;
  log: Logger;
  engine: Engine;
  blobs: FsBlobStore;
  processors: Map<string, Processor>;
  close(): Promise<void>;
}

export async function openServices(config: Config, log = createLogger(config.logLevel)): Promise<Services> {
  parseAllowlist(config.urlAllowlist); // a bad PIXQ_URL_ALLOWLIST entry fails at start, not at the first download
  const engine = await openEngine(config, engineOptions(config));
  const blobs = new FsBlobStore(config.dataDir);
  const processors = createProcessors(config);
  const close = async () => {
    await Promise.all([...processors.values()].map((p) => p.close?.()));
    await engine.close();
  };
  return { config, log, engine, blobs, processors, close };
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
  const worker = new Worker({
    engine,
    processors,
    concurrency: config.workerConcurrency,
    blobs,
    log: log.child({ component: 'worker' }),
    loadInput: inputLoader(blobs, config),
    pollMs: config.pollMs,
    shutdownGraceMs: config.shutdownGraceMs,
  });
  await worker.start();
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
  };
}
