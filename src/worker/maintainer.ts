import type { Logger } from 'pino';
import type { BlobStore } from '../blobs/types.js';
import type { Engine } from '../engine/index.js';

const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * Runs the engine's housekeeping on timers: expired leases and due retries every `pollMs`, retention
 * every ten minutes. Every worker process runs one; the operations are safe to run concurrently.
 */
export function startMaintainer(opts: {
  engine: Engine;
  blobs: BlobStore;
  log: Logger;
  pollMs: number;
  retentionMs: number;
}): () => void {
  const { engine, log } = opts;
  const guard = (name: string, task: () => Promise<unknown>) => () => {
    task().catch((err) => log.error({ err }, `${name} failed`));
  };
  const tick = guard('lease and retry check', async () => {
    const reaped = await engine.maintenance.reapExpiredLeases();
    if (reaped > 0) log.warn({ reaped }, 'returned jobs whose worker stopped renewing its lease');
    await engine.maintenance.promoteDelayed();
  });
  const prune = guard('retention', async () => {
    const deleted = await engine.maintenance.prune(opts.retentionMs, (key) => opts.blobs.delete(key));
    await engine.webhooks.prune(Date.now() - opts.retentionMs);
    if (deleted > 0) log.info({ deleted }, 'deleted finished jobs past retention');
  });
  const timers = [setInterval(tick, opts.pollMs), setInterval(prune, PRUNE_EVERY_MS)];
  for (const timer of timers) timer.unref();
  prune();
  return () => timers.forEach(clearInterval);
}
