import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { claim, specs, succeed, useEngine } from '../support/engine.js';

describeEachStore('caps, job types and leases', (target) => {
  const open = useEngine(target);

  it('a vendor never runs more than its cap, across claimers', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v', { maxRunning: 2 });
    await engine.jobs.enqueue(v.id, specs(10));
    const first = await claim(engine, 'w1', { noop: 10 });
    const second = await claim(engine, 'w2', { noop: 10 });
    expect(first.jobs).toHaveLength(2);
    expect(second.jobs).toHaveLength(0);
    await succeed(engine, 'w1', first.jobs[0], { outputs: [] });
    expect((await claim(engine, 'w2', { noop: 10 })).jobs).toHaveLength(1);
  });

  it('is work-conserving: one active vendor may use every free slot', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(20));
    expect((await claim(engine, 'w', { noop: 12 })).jobs).toHaveLength(12);
  });

  it('holds a global per-type concurrency limit and honours pause and resume', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(10));
    await engine.registry.configureType('noop', { maxRunning: 3 });
    expect((await claim(engine, 'w1', { noop: 10 })).jobs).toHaveLength(3);
    expect((await claim(engine, 'w2', { noop: 10 })).jobs).toHaveLength(0);
    await engine.registry.configureType('noop', { maxRunning: null, paused: true });
    expect((await claim(engine, 'w2', { noop: 10 })).jobs).toHaveLength(0);
    await engine.registry.configureType('noop', { paused: false });
    expect((await claim(engine, 'w2', { noop: 10 })).jobs).toHaveLength(7);
    expect(await engine.registry.types()).toEqual([{ type: 'noop', paused: false, maxRunning: null, rateLimit: null }]);
  });

  it('holds a global per-type rate limit across claimers, window by window', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now });
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(10));
    await engine.registry.configureType('noop', { rateLimit: { limit: 4, windowMs: 60_000 } });
    expect((await claim(engine, 'w1', { noop: 3 })).jobs).toHaveLength(3);
    expect((await claim(engine, 'w2', { noop: 3 })).jobs).toHaveLength(1);
    now += 30_000;
    expect((await claim(engine, 'w2', { noop: 3 })).jobs).toHaveLength(0);
    now += 30_001;
    expect((await claim(engine, 'w2', { noop: 10 })).jobs).toHaveLength(4);
  });

  it('hands out claimed jobs exactly as the store now holds them, also on a retried attempt', async () => {
    const { engine } = await open({ backoffBaseMs: 0 });
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, [
      ...specs(2),
      { type: 'noop', options: { ms: 1 }, priority: 5, metadata: { recordId: 'r1' } },
    ]);
    const first = await claim(engine, 'w', { noop: 1 });
    await engine.work.fail('w', first.jobs[0], new Error('flaky'));
    await engine.maintenance.promoteDelayed();
    const { jobs } = await claim(engine, 'w', { noop: 3 });
    expect(jobs).toHaveLength(3);
    expect(jobs.some((j) => j.attempts === 2 && j.error?.message === 'flaky')).toBe(true);
    for (const job of jobs) {
      const { outputs: _, ...stored } = await engine.jobs.get(job.id);
      expect(job).toEqual(stored);
    }
  });

  it('claims only the types a worker has slots for', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, [...specs(2, { type: 'slow' }), ...specs(2)]);
    const { jobs } = await claim(engine, 'w', { noop: 5 });
    expect(jobs.map((j) => j.type)).toEqual(['noop', 'noop']);
  });

  it('a heartbeat renews the lease; an expired lease returns the job counting the attempt', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now, leaseMs: 1000 });
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(1));
    const [job] = (await claim(engine, 'w1', { noop: 1 })).jobs;
    now += 800;
    expect(await engine.work.heartbeat('w1', [job.id])).toEqual({ lost: [], cancelRequested: [] });
    now += 800;
    expect(await engine.maintenance.reapExpiredLeases()).toBe(0);
    now += 1500;
    expect(await engine.maintenance.reapExpiredLeases()).toBe(1);
    expect(await engine.jobs.get(job.id)).toMatchObject({ state: 'queued', attempts: 1, leaseOwner: null });
    const [again] = (await claim(engine, 'w2', { noop: 1 })).jobs;
    expect(again).toMatchObject({ id: job.id, attempts: 2, leaseOwner: 'w2' });
    // The first worker comes back to life: its lease is gone, so it can change nothing.
    expect(await engine.work.heartbeat('w1', [job.id])).toEqual({ lost: [job.id], cancelRequested: [] });
    expect(await succeed(engine, 'w1', job, { outputs: [] })).toBe(false);
    expect(await succeed(engine, 'w2', again, { outputs: [] })).toBe(true);
  });

  it('a job whose lease expires on its last attempt fails with lease_expired', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now, leaseMs: 1000 });
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, [{ type: 'noop', maxAttempts: 1 }]);
    const [job] = (await claim(engine, 'w1', { noop: 1 })).jobs;
    now += 2000;
    await engine.maintenance.reapExpiredLeases();
    expect(await engine.jobs.get(job.id)).toMatchObject({ state: 'failed', error: { code: 'lease_expired' } });
  });
});
