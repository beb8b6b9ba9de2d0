import { expect, it } from 'vitest';
import { PixqError } from '../../src/errors.js';
import { describeEachStore } from '../support/stores.js';
import { claim, specs, useEngine } from '../support/engine.js';

describeEachStore('vendors and enqueue', (target) => {
  const open = useEngine(target);

  it('stores every job field and reads it back', async () => {
    const { engine } = await open();
    const vendor = await engine.vendors.create('acme', { weight: 2, maxRunning: 3, maxQueued: 100 });
    expect(await engine.vendors.get('acme')).toMatchObject({
      id: vendor.id,
      weight: 2,
      maxRunning: 3,
      maxQueued: 100,
      status: 'active',
    });
    const { jobs } = await engine.jobs.enqueue(
      vendor.id,
      [
        {
          type: 'noop',
          options: { ms: 5 },
          priority: 7,
          maxAttempts: 5,
          timeoutMs: 1234,
          metadata: { recordId: 'r-1' },
          idempotencyKey: 'k1',
          inputBlob: 'a'.repeat(64),
        },
      ],
      'batch-1',
    );
    const job = await engine.jobs.get(jobs[0].id, vendor.id);
    expect(job).toMatchObject({
      vendorId: vendor.id,
      type: 'noop',
      state: 'queued',
      priority: 7,
      options: { ms: 5 },
      attempts: 0,
      maxAttempts: 5,
      timeoutMs: 1234,
      metadata: { recordId: 'r-1' },
      idempotencyKey: 'k1',
      batchId: 'batch-1',
      inputBlob: 'a'.repeat(64),
      outputs: [],
      error: null,
    });
    expect(job.createdAt).toBeGreaterThan(0);
  });

  it('a delayed job waits as `delayed` and becomes queued when due', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now });
    const v = await engine.vendors.create('v');
    const { jobs } = await engine.jobs.enqueue(v.id, [{ type: 'noop', delayMs: 5000 }]);
    expect(jobs[0].state).toBe('delayed');
    expect((await claim(engine, 'w', { noop: 1 })).jobs).toHaveLength(0);
    now += 5001;
    expect(await engine.maintenance.promoteDelayed()).toBe(1);
    expect((await claim(engine, 'w', { noop: 1 })).jobs.map((j) => j.id)).toEqual([jobs[0].id]);
  });

  it('the same idempotency key returns the existing job, per vendor', async () => {
    const { engine } = await open();
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    const first = await engine.jobs.enqueue(a.id, [{ type: 'noop', idempotencyKey: 'order-7' }]);
    const again = await engine.jobs.enqueue(a.id, [{ type: 'noop', idempotencyKey: 'order-7' }]);
    const other = await engine.jobs.enqueue(b.id, [{ type: 'noop', idempotencyKey: 'order-7' }]);
    expect(again.jobs[0].id).toBe(first.jobs[0].id);
    expect(again.created).toEqual([false]);
    expect(other.jobs[0].id).not.toBe(first.jobs[0].id);
    expect(other.created).toEqual([true]);
  });

  it('a bulk enqueue is all or nothing', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    const bad = [...specs(5), { type: 'noop', priority: 1.5 }];
    await expect(engine.jobs.enqueue(v.id, bad)).rejects.toMatchObject({ code: 'validation_failed' });
    expect((await engine.jobs.list(v.id, {}, 100)).jobs).toHaveLength(0);
    const ok = await engine.jobs.enqueue(v.id, specs(300), 'b1');
    expect(ok.jobs).toHaveLength(300);
    expect((await engine.jobs.batch('b1', v.id)).counts.queued).toBe(300);
  });

  it('refuses a vendor over its backlog quota with a typed error, and the whole bulk with it', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v', { maxQueued: 10 });
    await engine.jobs.enqueue(v.id, specs(8));
    const err = await engine.jobs.enqueue(v.id, specs(3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PixqError);
    expect(err).toMatchObject({ code: 'quota_exceeded', status: 429 });
    expect((await engine.jobs.list(v.id, {}, 100)).jobs).toHaveLength(8);
    await engine.jobs.enqueue(v.id, specs(2));
  });

  it('a suspended vendor cannot enqueue and is not served', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(2));
    await engine.vendors.update(v.id, { status: 'suspended' });
    await expect(engine.jobs.enqueue(v.id, specs(1))).rejects.toMatchObject({ code: 'vendor_suspended' });
    expect((await claim(engine, 'w', { noop: 5 })).jobs).toHaveLength(0);
  });

  it('lists a vendor’s jobs newest first with cursor pagination and filters, never another vendor’s', async () => {
    const { engine } = await open();
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    const { jobs } = await engine.jobs.enqueue(a.id, specs(5));
    await engine.jobs.enqueue(a.id, specs(2, { type: 'other' }));
    await engine.jobs.enqueue(b.id, specs(4));
    const first = await engine.jobs.list(a.id, { type: 'noop' }, 3);
    const second = await engine.jobs.list(a.id, { type: 'noop' }, 3, first.nextCursor!);
    expect([...first.jobs, ...second.jobs].map((j) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
    expect(second.nextCursor).toBeNull();
    await expect(engine.jobs.get(jobs[0].id, b.id)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('validates vendor settings and names', async () => {
    const { engine } = await open();
    await expect(engine.vendors.create('bad name!')).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(engine.vendors.create('v', { weight: 0 })).rejects.toMatchObject({ code: 'validation_failed' });
    await engine.vendors.create('v');
    await expect(engine.vendors.create('v')).rejects.toMatchObject({ code: 'conflict' });
  });
});
