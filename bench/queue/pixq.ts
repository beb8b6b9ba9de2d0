import { loadConfig } from '../../src/config.js';
import type { JobSpec } from '../../src/engine/index.js';
import { openServices, startWorker, type Services } from '../../src/services.js';
import { defer, tempDir } from './cleanup.js';
import type { Progress, Settings, Subject } from './measure.js';
import { freshDatabase } from './postgres.js';

const NOOP: JobSpec = { type: 'noop', options: { ms: 0 } };
const PROBE_BATCH = 'latency-probes';

/**
 * pixq as a `pixq worker` process runs it: the config comes from (bench-chosen) environment variables and
 * the workers are started by `startWorker`, i.e. the real Worker class plus the maintainer timers.
 */
export async function openPixq(store: 'sqlite' | 'postgres', s: Settings, adminUrl: string): Promise<Subject> {
  const env = {
    PIXQ_DATA_DIR: tempDir('pixq-bench-'),
    DATABASE_URL: store === 'postgres' ? await freshDatabase(adminUrl, 'pixq') : undefined,
    PIXQ_ENABLE_NOOP: '1',
    PIXQ_WORKER_CONCURRENCY: onlyNoop(s.concurrency),
    PIXQ_LOG_LEVEL: 'warn',
  };
  const config = loadConfig(env);
  const services = await openServices(config);
  let stopWorkers: (() => Promise<void>) | undefined;
  defer(`close pixq (${store})`, async () => {
    await stopWorkers?.();
    await services.close();
  });
  const vendorId = (await services.engine.vendors.create('bench')).id;
  const progress = countSucceeded(services);
  return {
    label: `pixq / ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
    workerSettings:
      `startWorker(): 1 Worker, slots noop=${s.concurrency}, claim batch ${config.claimBatch}, ` +
      `poll ${config.pollMs} ms, lease ${config.leaseMs} ms, maintainer on` +
      (store === 'postgres' ? ', pg pool 10 + LISTEN/NOTIFY bus' : ', WAL, synchronous=NORMAL'),
    enqueueBulk: async (count) => void (await services.engine.jobs.enqueue(vendorId, Array(count).fill(NOOP))),
    startWorkers: async () => void (stopWorkers = await startWorker(services)),
    progress: async () => ({ ...progress }),
    discardBacklog: () => cancelQueued(services),
    enqueueProbe: async () => void (await services.engine.jobs.enqueue(vendorId, [NOOP], PROBE_BATCH)),
    probeLatencies: () => probeLatencies(services),
  };
}

/** Slots for noop only: the image types' default slots would otherwise add to the shared concurrency. */
export function onlyNoop(slots: number): string {
  const types = Object.keys(loadConfig({}).workerConcurrency).filter((t) => t !== 'noop');
  return [...types.map((t) => `${t}=0`), `noop=${slots}`].join(',');
}

/**
 * Finishes as the engine publishes them, after their commit: the queue's own record, counted in memory as
 * the BullMQ subject counts its `completed` events (a COUNT over the jobs table would cost the worker time).
 */
function countSucceeded({ engine }: Services): Progress {
  const progress: Progress = { finished: 0, lastFinishedAt: null };
  engine.bus.onEvent((event) => {
    if (event.state !== 'succeeded' || event.batchId === PROBE_BATCH) return;
    progress.finished++;
    progress.lastFinishedAt = event.at;
  });
  return progress;
}

/** Only reached when the processing phase was cut off; the engine has no bulk cancel, so it is direct SQL. */
async function cancelQueued({ engine }: Services): Promise<void> {
  const now = Date.now();
  await engine.store.db
    .updateTable('jobs')
    .set({ state: 'cancelled', finished_at: now, updated_at: now })
    .where('state', '=', 'queued')
    .execute();
}

/** `startedAt - createdAt` as the store recorded them (both the engine's Date.now()). */
async function probeLatencies({ engine }: Services): Promise<number[]> {
  const rows = await engine.store.db
    .selectFrom('jobs')
    .select(['created_at', 'started_at'])
    .where('batch_id', '=', PROBE_BATCH)
    .where('started_at', 'is not', null)
    .execute();
  return rows.map((r) => Number(r.started_at) - Number(r.created_at));
}
