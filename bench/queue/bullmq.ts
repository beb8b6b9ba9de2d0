import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { defer } from './cleanup.js';
import type { Progress, Settings, Subject } from './measure.js';

interface NoopData {
  ms: number;
  probe?: boolean;
}

const PREFIX = 'bull';

/**
 * BullMQ with one Worker of the shared concurrency and default job options (completed jobs are kept, as
 * pixq and pg-boss keep theirs). The queue name is unique to this run and all its keys are removed after.
 */
export async function openBullmq(s: Settings, redisUrl: string): Promise<Subject> {
  const { hostname, port } = new URL(redisUrl);
  const connection: ConnectionOptions = { host: hostname, port: Number(port || 6379) };
  const name = `pixq-bench-${process.pid}-${Date.now()}`;
  const queue = new Queue<NoopData>(name, { connection, prefix: PREFIX });
  await queue.waitUntilReady();
  let worker: Worker<NoopData> | undefined;
  defer(`remove BullMQ queue ${name}`, async () => {
    await worker?.close();
    await queue.obliterate({ force: true });
    await deleteLeftoverKeys(queue, `${PREFIX}:${name}:*`);
    await queue.close();
  });

  const progress: Progress = { finished: 0, lastFinishedAt: null };
  const latencies: number[] = [];
  const handler = async (job: Job<NoopData>) => {
    // processedOn is stamped by the worker's move to active; timestamp by the producer's add (same clock).
    if (job.data.probe) latencies.push(job.processedOn! - job.timestamp);
    return { sleptMs: job.data.ms };
  };
  return {
    label: 'BullMQ / Redis',
    workerSettings: `1 Worker, concurrency ${s.concurrency}, default options (stalled check 30 s, jobs kept)`,
    enqueueBulk: async (count) =>
      void (await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: { ms: 0 } })))),
    async startWorkers() {
      worker = new Worker<NoopData>(name, handler, {
        connection: { ...connection, maxRetriesPerRequest: null },
        prefix: PREFIX,
        concurrency: s.concurrency,
      });
      worker.on('completed', () => {
        progress.finished++;
        progress.lastFinishedAt = Date.now();
      });
      await worker.waitUntilReady();
    },
    progress: async () => ({ ...progress }),
    discardBacklog: () => queue.drain(),
    enqueueProbe: async () => void (await queue.add('noop', { ms: 0, probe: true })),
    probeLatencies: async () => [...latencies],
  };
}

/** obliterate() should leave nothing; this sweeps anything else under the run's own queue prefix. */
async function deleteLeftoverKeys(queue: Queue<NoopData>, pattern: string): Promise<void> {
  const client = await queue.client;
  for await (const keys of client.scanStream({ match: pattern, count: 1000 })) {
    if ((keys as string[]).length > 0) await client.del(...(keys as string[]));
  }
}
