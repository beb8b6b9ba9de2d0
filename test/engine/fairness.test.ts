import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { claim, drainOneByOne, specs, succeed, useEngine } from '../support/engine.js';

describeEachStore('fair claims between vendors', (target) => {
  const open = useEngine(target);

  it('a late vendor with 10 jobs does not wait behind 100 of another: all of B start before A’s 25th', async () => {
    const { engine } = await open({ claimBatch: 1 });
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    await engine.jobs.enqueue(a.id, specs(100));
    // A's work has begun when B arrives, as in a real bulk upload.
    const early = await drainOneByOne(engine, 'noop', 3);
    await engine.jobs.enqueue(b.id, specs(10));
    const order = [...early, ...(await drainOneByOne(engine, 'noop', 200))];
    expect(order).toHaveLength(110);
    const lastB = order.lastIndexOf(b.id);
    const aStartsBeforeLastB = order.slice(0, lastB).filter((v) => v === a.id).length;
    expect(aStartsBeforeLastB).toBeLessThan(24);
  });

  it('weights share capacity: weight 3 against weight 1 gets 75% ± 5% of 400 claims', async () => {
    const { engine } = await open({ claimBatch: 1 });
    const a = await engine.vendors.create('a', { weight: 3 });
    const b = await engine.vendors.create('b', { weight: 1 });
    await engine.jobs.enqueue(a.id, specs(500));
    await engine.jobs.enqueue(b.id, specs(500));
    const order = await drainOneByOne(engine, 'noop', 400);
    const share = order.filter((v) => v === a.id).length / order.length;
    expect(order).toHaveLength(400);
    expect(share).toBeGreaterThanOrEqual(0.7);
    expect(share).toBeLessThanOrEqual(0.8);
  });

  it('interleaves vendors within one claim batch', async () => {
    const { engine } = await open({ claimBatch: 10 });
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    await engine.jobs.enqueue(a.id, specs(50));
    await engine.jobs.enqueue(b.id, specs(50));
    const { jobs } = await claim(engine, 'w', { noop: 10 });
    expect(jobs.filter((j) => j.vendorId === a.id)).toHaveLength(5);
    expect(jobs.filter((j) => j.vendorId === b.id)).toHaveLength(5);
  });

  it('an idle vendor banks no credit: after a long absence it alternates instead of taking a run', async () => {
    const { engine } = await open({ claimBatch: 1 });
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    await engine.jobs.enqueue(b.id, specs(1));
    await drainOneByOne(engine, 'noop', 1);
    await engine.jobs.enqueue(a.id, specs(200));
    await drainOneByOne(engine, 'noop', 100);
    await engine.jobs.enqueue(b.id, specs(20));
    const order = await drainOneByOne(engine, 'noop', 20);
    const longestRunOfB = Math.max(
      ...order
        .join('')
        .split(a.id)
        .map((run) => run.length / b.id.length),
    );
    expect(longestRunOfB).toBeLessThanOrEqual(2);
  });

  it('within a vendor: higher priority first, then first in first out', async () => {
    const { engine } = await open({ claimBatch: 1 });
    const a = await engine.vendors.create('a');
    const { jobs } = await engine.jobs.enqueue(a.id, [
      { type: 'noop', metadata: { n: 1 } },
      { type: 'noop', metadata: { n: 2 } },
      { type: 'noop', priority: 5, metadata: { n: 3 } },
      { type: 'noop', metadata: { n: 4 } },
    ]);
    const claimed: unknown[] = [];
    for (let i = 0; i < jobs.length; i++) {
      const [job] = (await claim(engine, 'w', { noop: 1 })).jobs;
      claimed.push(job.metadata?.n);
      await succeed(engine, 'w', job, { outputs: [] });
    }
    expect(claimed).toEqual([3, 1, 2, 4]);
  });
});
