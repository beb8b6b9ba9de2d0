import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { waitUntil, workerCluster } from '../support/processes.js';

describeEachStore('per-vendor cap across worker processes', (target) => {
  it('a vendor with cap 2 never has more than 2 running jobs while three workers run', { timeout: 120_000 }, async () => {
    const cluster = await workerCluster(target, { PIXQ_WORKER_CONCURRENCY: 'noop=4', PIXQ_POLL_MS: '20' });
    const { engine } = cluster;
    try {
      const capped = await engine.vendors.create('capped', { maxRunning: 2 });
      const free = await engine.vendors.create('free');
      await engine.jobs.enqueue(capped.id, Array.from({ length: 60 }, () => ({ type: 'noop', options: { ms: 40 } })));
      await engine.jobs.enqueue(free.id, Array.from({ length: 60 }, () => ({ type: 'noop', options: { ms: 40 } })));
      const running = async (vendorId: string) =>
        Number(
          (
            await engine.store.db
              .selectFrom('jobs')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('vendor_id', '=', vendorId)
              .where('state', '=', 'running')
              .executeTakeFirstOrThrow()
          ).n,
        );
      const seen = { capped: 0, free: 0, samples: 0 };
      await waitUntil(
        async () => {
          seen.capped = Math.max(seen.capped, await running(capped.id));
          seen.free = Math.max(seen.free, await running(free.id));
          seen.samples++;
          const done = (await engine.stats(3_600_000)).totals.succeeded ?? 0;
          return done === 120;
        },
        90_000,
        'all jobs to finish',
      );
      expect(seen.samples).toBeGreaterThan(20);
      expect(seen.capped).toBe(2); // reached, never exceeded
      expect(seen.free).toBeGreaterThan(2); // the uncapped vendor used the other slots meanwhile
    } finally {
      await cluster.close();
    }
  });
});
