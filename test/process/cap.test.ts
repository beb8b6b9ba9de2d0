import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { peakRunning, workerCluster } from '../support/processes.js';

describeEachStore('per-vendor cap across worker processes', (target) => {
  it(
    'a vendor with cap 2 never has more than 2 running jobs while three workers run',
    { timeout: 120_000 },
    async () => {
      const cluster = await workerCluster(target, { PIXQ_WORKER_CONCURRENCY: 'noop=4', PIXQ_POLL_MS: '20' });
      const { engine } = cluster;
      try {
        const capped = await engine.vendors.create('capped', { maxRunning: 2 });
        const free = await engine.vendors.create('free');
        await engine.jobs.enqueue(
          capped.id,
          Array.from({ length: 60 }, () => ({ type: 'noop', options: { ms: 40 } })),
        );
        await engine.jobs.enqueue(
          free.id,
          Array.from({ length: 60 }, () => ({ type: 'noop', options: { ms: 40 } })),
        );
        const { peaks, samples } = await peakRunning(engine, [capped.id, free.id], async () => {
          const done = (await engine.stats(3_600_000)).totals.succeeded ?? 0;
          return done === 120;
        });
        expect(samples).toBeGreaterThan(20);
        expect(peaks[0]).toBe(2); // reached, never exceeded
        expect(peaks[1]).toBeGreaterThan(2); // the uncapped vendor used the other slots meanwhile
      } finally {
        await cluster.close();
      }
    },
  );
});
