import { expect, it } from 'vitest';
import pino from 'pino';
import { FsBlobStore } from '../../src/blobs/index.js';
import type { Engine } from '../../src/engine/index.js';
import { noop } from '../../src/processors/noop.js';
import type { Processor } from '../../src/processors/index.js';
import { inputLoader, Worker } from '../../src/worker/index.js';
import { loadConfig } from '../../src/config.js';
import { describeEachStore } from '../support/stores.js';
import { useEngine } from '../support/engine.js';

function startWorker(engine: Engine, dataDir: string, opts: { slots?: number; graceMs?: number } = {}) {
  const blobs = new FsBlobStore(dataDir, engine.blobs);
  const worker = new Worker({
    engine,
    processors: new Map<string, Processor>([['noop', noop]]),
    concurrency: { noop: opts.slots ?? 4 },
    blobs,
    log: pino({ level: 'silent' }),
    loadInput: inputLoader(blobs, loadConfig({})),
    pollMs: 50,
    shutdownGraceMs: opts.graceMs ?? 5000,
  });
  return worker.start().then(() => worker);
}

async function waitForState(engine: Engine, id: string, state: string, timeoutMs = 10_000) {
  const start = Date.now();
  for (;;) {
    const job = await engine.jobs.get(id);
    if (job.state === state) return job;
    if (Date.now() - start > timeoutMs) throw new Error(`job ${id} is ${job.state}, expected ${state}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeEachStore('worker runtime', (target) => {
  const open = useEngine(target);

  it('runs jobs to success and reports its health', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir, { slots: 3 });
    const { jobs } = await engine.jobs.enqueue(v.id, Array.from({ length: 10 }, () => ({ type: 'noop', options: { ms: 5 } })));
    for (const job of jobs) await waitForState(engine, job.id, 'succeeded');
    const [health] = await engine.registry.workers();
    expect(health).toMatchObject({ id: worker.id, pid: process.pid, slots: { noop: 3 }, stopping: false });
    await worker.stop();
    expect(await engine.registry.workers()).toEqual([]);
  });

  it('fails an attempt that outlives its timeout with code timeout', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir);
    const { jobs } = await engine.jobs.enqueue(v.id, [{ type: 'noop', options: { ms: 5000 }, timeoutMs: 200, maxAttempts: 1 }]);
    const job = await waitForState(engine, jobs[0].id, 'failed');
    expect(job.error).toMatchObject({ code: 'timeout', retryable: true });
    expect(job.finishedAt! - job.startedAt!).toBeLessThan(2000);
    await worker.stop();
  });

  it('stops a running job within a second of its cancellation', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir);
    const { jobs } = await engine.jobs.enqueue(v.id, [{ type: 'noop', options: { ms: 30_000 } }]);
    await waitForState(engine, jobs[0].id, 'running');
    const asked = Date.now();
    await engine.jobs.cancel(jobs[0].id, v.id);
    const job = await waitForState(engine, jobs[0].id, 'cancelled');
    expect(job.finishedAt! - asked).toBeLessThan(1000);
    await worker.stop();
  });

  it('on stop lets short jobs finish and returns long ones to the queue without spending an attempt', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir, { slots: 2, graceMs: 500 });
    const { jobs } = await engine.jobs.enqueue(v.id, [
      { type: 'noop', options: { ms: 200 } },
      { type: 'noop', options: { ms: 20_000 } },
    ]);
    await waitForState(engine, jobs[0].id, 'running');
    await waitForState(engine, jobs[1].id, 'running');
    await worker.stop();
    expect((await engine.jobs.get(jobs[0].id)).state).toBe('succeeded');
    expect(await engine.jobs.get(jobs[1].id)).toMatchObject({ state: 'queued', attempts: 0 });
  });
});
