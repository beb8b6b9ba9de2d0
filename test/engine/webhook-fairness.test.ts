import { expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { describeEachStore } from '../support/stores.js';
import { useEngine } from '../support/engine.js';

/**
 * Delivery workers claim due deliveries fairly across vendors: every vendor with a due delivery gets one into a
 * claim before any vendor gets a second, and successive claims take turns, so one vendor's backlog (issue 20:
 * 300 black-holed endpoints) delays another vendor's due delivery by at most one batch.
 */
describeEachStore('webhook deliveries claimed fairly across vendors', (target) => {
  const open = useEngine(target);

  /** `jobs` cancelled jobs of a new vendor with one endpoint for job.cancelled: that many due deliveries. */
  async function vendorWithDeliveries(engine: Engine, name: string, jobs: number) {
    const vendor = await engine.vendors.create(name);
    await engine.webhooks.create(vendor.id, { url: `http://127.0.0.1:9/${name}`, events: ['job.cancelled'] });
    const { jobs: queued } = await engine.jobs.enqueue(
      vendor.id,
      Array.from({ length: jobs }, () => ({ type: 'noop' })),
    );
    for (const job of queued) await engine.jobs.cancel(job.id, vendor.id);
    return vendor.id;
  }

  it("puts a quiet vendor's due delivery into the next batch, ahead of another's older backlog", async () => {
    const { engine } = await open();
    const busy = await vendorWithDeliveries(engine, 'busy', 60);
    const quiet = await vendorWithDeliveries(engine, 'quiet', 1); // due last of all
    const batch = await engine.webhooks.claimDue('deliverer-1', 8, 30_000);
    expect(batch).toHaveLength(8);
    expect(batch.map((d) => d.delivery.vendorId)).toContain(quiet);
    expect(batch.filter((d) => d.delivery.vendorId === busy)).toHaveLength(7);
  });

  it('takes turns when slots free one at a time: the quiet vendor waits for at most one claim', async () => {
    const { engine } = await open();
    const busy = await vendorWithDeliveries(engine, 'busy', 60);
    // The busy vendor's backlog holds every slot (black-holed endpoints: each attempt runs to its timeout).
    const held = await engine.webhooks.claimDue('deliverer-1', 8, 30_000);
    expect(held.every((d) => d.delivery.vendorId === busy)).toBe(true);
    const quiet = await vendorWithDeliveries(engine, 'quiet', 1);
    const next = [];
    for (let slot = 0; slot < 2; slot++) next.push(...(await engine.webhooks.claimDue('deliverer-1', 1, 30_000)));
    expect(next.map((d) => d.delivery.vendorId)).toContain(quiet);
  });
});
