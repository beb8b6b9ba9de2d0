import { Type } from '@sinclair/typebox';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import pino from 'pino';
import { FsBlobStore } from '../../src/blobs/index.js';
import type { Engine } from '../../src/engine/index.js';
import { noop } from '../../src/processors/noop.js';
import { createTransform } from '../../src/processors/transform.js';
import type { Processor } from '../../src/processors/index.js';
import { inputLoader, Worker } from '../../src/worker/index.js';
import { loadConfig } from '../../src/config.js';
import { describeEachStore } from '../support/stores.js';
import { useEngine } from '../support/engine.js';
import { waitUntil } from '../support/processes.js';

function startWorker(
  engine: Engine,
  dataDir: string,
  opts: { slots?: number; graceMs?: number; processors?: Processor[] } = {},
) {
  const blobs = new FsBlobStore(dataDir, engine.blobs);
  const processors = opts.processors ?? [noop];
  const worker = new Worker({
    engine,
    processors: new Map<string, Processor>(processors.map((p) => [p.type, p])),
    concurrency: Object.fromEntries(processors.map((p) => [p.type, opts.slots ?? 4])),
    blobs,
    log: pino({ level: 'silent' }),
    loadInput: inputLoader(blobs, loadConfig({})),
    pollMs: 50,
    shutdownGraceMs: opts.graceMs ?? 5000,
  });
  return worker.start().then(() => worker);
}

async function waitForState(engine: Engine, id: string, state: string) {
  await waitUntil(async () => (await engine.jobs.get(id)).state === state, 30_000, `job ${id} to be ${state}`);
  return engine.jobs.get(id);
}

/**
 * Jobs of type `gate` (options `{name}`) run until the test opens their gate, so a test decides when work ends
 * instead of racing a sleep against the worker.
 */
function gates() {
  const open = new Map<string, () => void>();
  const processor: Processor = {
    type: 'gate',
    optionsSchema: Type.Object({ name: Type.String() }),
    needsInput: false,
    run: ({ options, signal }) =>
      new Promise((resolve, reject) => {
        const { name } = options as { name: string };
        open.set(name, () => resolve({ outputs: [] }));
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
  };
  return { processor, open: (name: string) => open.get(name)!() };
}

describeEachStore('worker runtime', (target) => {
  const open = useEngine(target);

  it('runs jobs to success and reports its health', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir, { slots: 3 });
    const { jobs } = await engine.jobs.enqueue(
      v.id,
      Array.from({ length: 10 }, () => ({ type: 'noop', options: { ms: 5 } })),
    );
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
    const work = 600_000;
    const { jobs } = await engine.jobs.enqueue(v.id, [
      { type: 'noop', options: { ms: work }, timeoutMs: 200, maxAttempts: 1 },
    ]);
    const job = await waitForState(engine, jobs[0].id, 'failed');
    expect(job.error).toMatchObject({ code: 'timeout', retryable: true });
    // Ended by its timeout: not before it, and not when the ten-minute work would have.
    expect(job.finishedAt! - job.startedAt!).toBeGreaterThanOrEqual(200);
    expect(job.finishedAt! - job.startedAt!).toBeLessThan(work);
    await worker.stop();
  });

  it('stops a running job on its cancellation, without waiting for its work', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const worker = await startWorker(engine, dataDir);
    // Ten minutes of work and a 30 s lease: ending within waitForState's deadline shows the cancel stopped it
    // (how fast is a matter for benchmarks, not for a test on a shared machine).
    const work = 600_000;
    const { jobs } = await engine.jobs.enqueue(v.id, [{ type: 'noop', options: { ms: work } }]);
    await waitForState(engine, jobs[0].id, 'running');
    const asked = Date.now();
    await engine.jobs.cancel(jobs[0].id, v.id);
    const job = await waitForState(engine, jobs[0].id, 'cancelled');
    expect(job.error).toMatchObject({ code: 'cancelled' });
    expect(job.finishedAt! - asked).toBeLessThan(work);
    await worker.stop();
  });

  it(
    'keeps the slot of a timed-out or cancelled job until its image work has stopped',
    { timeout: 300_000 },
    async () => {
      const { engine, dataDir } = await open({ backoffBaseMs: 0, backoffMaxMs: 0 });
      const v = await engine.vendors.create('v');
      const slots = 1;
      // The real transform, counted: how many of its runs are under way, aborted or not.
      const transform = createTransform(loadConfig({}));
      let runs = 0;
      const counted: Processor = {
        ...transform,
        run: async (ctx) => {
          runs++;
          try {
            return await transform.run(ctx as Parameters<typeof transform.run>[0]);
          } finally {
            runs--;
          }
        },
      };
      const worker = await startWorker(engine, dataDir, { slots, processors: [counted] });
      // Seconds of libvips work per run (decode, a 33 degree rotation, a large resize, PNG): far past a 100 ms deadline.
      const side = 1500;
      const noise = Buffer.alloc(side * side * 3);
      for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
      const input = await sharp(noise, { raw: { width: side, height: side, channels: 3 } })
        .jpeg()
        .toBuffer();
      const blob = await new FsBlobStore(dataDir, engine.blobs).put(input, 'image/jpeg');
      const heavy = {
        type: 'transform',
        inputBlob: blob.key,
        options: { rotate: 33, background: '#ffffff', resize: { width: 2500, height: 2500 }, format: 'png' },
      };
      // sharp's own count of its tasks queued or running: the image work this process really does.
      let peak = 0;
      let peakRuns = 0;
      const sampler = setInterval(() => {
        const { queue, process } = sharp.counters();
        peak = Math.max(peak, queue + process);
        peakRuns = Math.max(peakRuns, runs);
      }, 2);
      try {
        // Timed out (one attempt each: this worker runs no housekeeping to bring a retry back), then cancelled.
        const { jobs } = await engine.jobs.enqueue(v.id, [
          { ...heavy, timeoutMs: 100, maxAttempts: 1 },
          { ...heavy, timeoutMs: 100, maxAttempts: 1 },
          { ...heavy, timeoutMs: 100, maxAttempts: 1 },
          { ...heavy, timeoutMs: 600_000, priority: -1 },
        ]);
        await waitForState(engine, jobs[3].id, 'running');
        await engine.jobs.cancel(jobs[3].id, v.id);
        for (const job of jobs)
          await waitUntil(async () => (await engine.jobs.get(job.id)).finishedAt !== null, 240_000, 'the job to end');
        const ended = await Promise.all(jobs.map((j) => engine.jobs.get(j.id)));
        expect(ended.map((j) => j.error?.code)).toEqual(['timeout', 'timeout', 'timeout', 'cancelled']);
        // Each aborted run's work goes on after its outcome was recorded; sampled until the last has stopped.
        await waitUntil(() => runs === 0, 240_000, 'the last image work to stop');
      } finally {
        clearInterval(sampler);
        await worker.stop();
      }
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThanOrEqual(slots);
      expect(peakRuns).toBe(slots);
    },
  );

  it('on stop lets short jobs finish and returns long ones to the queue without spending an attempt', async () => {
    const { engine, dataDir } = await open();
    const v = await engine.vendors.create('v');
    const gate = gates();
    // The short job ends once the worker is stopping; the grace gives recording it a wide margin.
    const worker = await startWorker(engine, dataDir, { slots: 2, graceMs: 5000, processors: [gate.processor] });
    const { jobs } = await engine.jobs.enqueue(v.id, [
      { type: 'gate', options: { name: 'short' } },
      { type: 'gate', options: { name: 'long' } },
    ]);
    await waitForState(engine, jobs[0].id, 'running');
    await waitForState(engine, jobs[1].id, 'running');
    const stopped = worker.stop();
    await waitUntil(
      async () => (await engine.registry.workers())[0]?.stopping === true,
      30_000,
      'the worker to report stopping',
    );
    gate.open('short');
    await stopped;
    expect((await engine.jobs.get(jobs[0].id)).state).toBe('succeeded');
    expect(await engine.jobs.get(jobs[1].id)).toMatchObject({ state: 'queued', attempts: 0 });
  });
});
