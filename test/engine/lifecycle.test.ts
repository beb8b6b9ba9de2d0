import { expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/index.js';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import { PixqError } from '../../src/errors.js';
import type { JobEvent } from '../../src/engine/index.js';
import { describeEachStore } from '../support/stores.js';
import { claim, specs, succeed, useEngine } from '../support/engine.js';
import { waitUntil } from '../support/processes.js';

const retryable = new PixqError('upstream_unavailable', 'try later', { retryable: true });

describeEachStore('retries, cancel, events, stats and retention', (target) => {
  const open = useEngine(target);

  it('retries a retryable error with exponential backoff, then fails keeping the error', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now, backoffBaseMs: 1000, backoffMaxMs: 10_000 });
    const v = await engine.vendors.create('v');
    const { jobs } = await engine.jobs.enqueue(v.id, specs(1));
    const ceilings = [1000, 2000];
    for (const ceiling of ceilings) {
      const [job] = (await claim(engine, 'w', { noop: 1 })).jobs;
      await engine.work.fail('w', job, retryable);
      const after = await engine.jobs.get(jobs[0].id);
      expect(after.state).toBe('delayed');
      expect(after.runAt - now).toBeLessThanOrEqual(ceiling);
      now = after.runAt;
      await engine.maintenance.promoteDelayed();
    }
    const [last] = (await claim(engine, 'w', { noop: 1 })).jobs;
    expect(last.attempts).toBe(3);
    await engine.work.fail('w', last, retryable);
    expect(await engine.jobs.get(last.id)).toMatchObject({
      state: 'failed',
      attempts: 3,
      error: { code: 'upstream_unavailable', message: 'try later', retryable: true },
    });
  });

  it('a permanent error fails at once; an unknown error counts as retryable', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(2));
    const [a, b] = (await claim(engine, 'w', { noop: 2 })).jobs;
    await engine.work.fail('w', a, new PixqError('invalid_image', 'not an image'));
    await engine.work.fail('w', b, new Error('socket hang up'));
    expect(await engine.jobs.get(a.id)).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { code: 'invalid_image', retryable: false },
    });
    expect(await engine.jobs.get(b.id)).toMatchObject({
      state: 'delayed',
      error: { code: 'internal_error', retryable: true },
    });
  });

  it('cancels a queued job at once, flags a running one, and can queue failed or cancelled jobs again', async () => {
    const { engine } = await open();
    const v = await engine.vendors.create('v');
    const { jobs } = await engine.jobs.enqueue(v.id, specs(2));
    const cancelled: string[] = [];
    engine.bus.onCancel((id) => cancelled.push(id));
    const [running] = (await claim(engine, 'w', { noop: 1 })).jobs;
    const queued = jobs.find((j) => j.id !== running.id)!;
    expect((await engine.jobs.cancel(queued.id, v.id)).state).toBe('cancelled');
    const flagged = await engine.jobs.cancel(running.id, v.id);
    expect(flagged).toMatchObject({ state: 'running', cancelRequested: true });
    expect((await engine.work.heartbeat('w', [running.id])).cancelRequested).toEqual([running.id]);
    await engine.work.fail('w', running, new PixqError('cancelled', 'job was cancelled'));
    expect((await engine.jobs.get(running.id)).state).toBe('cancelled');
    await expect(engine.jobs.cancel(running.id, v.id)).rejects.toMatchObject({ code: 'invalid_state', status: 409 });
    const again = await engine.jobs.retry(running.id, v.id);
    expect(again).toMatchObject({ state: 'queued', attempts: 0, error: null, cancelRequested: false });
    await expect(engine.jobs.retry(again.id, v.id)).rejects.toMatchObject({ code: 'invalid_state' });
    await waitUntil(() => cancelled.includes(running.id), 20_000, 'the cancel to reach the bus');
  });

  it('another vendor can neither cancel nor retry a job', async () => {
    const { engine } = await open();
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    const { jobs } = await engine.jobs.enqueue(a.id, specs(1));
    await expect(engine.jobs.cancel(jobs[0].id, b.id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(engine.jobs.retry(jobs[0].id, b.id)).rejects.toMatchObject({ code: 'not_found' });
    expect((await engine.jobs.get(jobs[0].id)).state).toBe('queued');
  });

  it('publishes an event for every state change and progress update, with increasing ids', async () => {
    const { engine } = await open();
    const events: JobEvent[] = [];
    engine.bus.onEvent((e) => events.push(e));
    const v = await engine.vendors.create('v');
    const { jobs } = await engine.jobs.enqueue(v.id, specs(1));
    const [job] = (await claim(engine, 'w', { noop: 1 })).jobs;
    await engine.work.progress('w', job.id, { percent: 40, stage: 'inference', message: 'half way' });
    await succeed(engine, 'w', job, {
      outputs: [{ blob: 'b'.repeat(64), contentType: 'image/png', width: 2, height: 3, bytes: 10 }],
      result: { ok: 1 },
    });
    await waitUntil(() => events.length >= 4, 20_000, 'four published events');
    expect(events.map((e) => [e.kind, e.state])).toEqual([
      ['state', 'queued'],
      ['state', 'running'],
      ['progress', 'running'],
      ['state', 'succeeded'],
    ]);
    expect(events[2].progress).toEqual({ percent: 40, stage: 'inference', message: 'half way' });
    expect(events.every((e, i) => i === 0 || e.id > events[i - 1].id)).toBe(true);
    // What a reconnecting stream replays equals what was published, ids included (SQLite derives them from
    // the last insert id), so a client resuming from one of them gets exactly what it missed.
    expect(await engine.jobs.eventsAfter({ vendorId: v.id, afterId: 0, limit: 100 })).toEqual(events);
    expect(await engine.jobs.eventsAfter({ vendorId: v.id, afterId: events[1].id, limit: 100 })).toEqual(
      events.slice(2),
    );
    expect(events.every((e) => e.jobId === jobs[0].id && e.vendorId === v.id)).toBe(true);
    const stored = await engine.jobs.get(job.id);
    expect(stored.outputs).toEqual([
      { blob: 'b'.repeat(64), contentType: 'image/png', width: 2, height: 3, bytes: 10 },
    ]);
    expect(stored.result).toEqual({ ok: 1 });
    // The succeeded event is built from the worker's copy of the job; it must say what the row says.
    const done = { percent: 100, stage: null, message: null };
    expect(stored.progress).toEqual(done);
    expect(events[3]).toMatchObject({
      progress: done,
      attempts: stored.attempts,
      type: stored.type,
      batchId: stored.batchId,
      error: null,
    });
  });

  it('publishes the stored ids for events written together in one statement', async () => {
    const { engine } = await open();
    const events: JobEvent[] = [];
    engine.bus.onEvent((e) => events.push(e));
    const v = await engine.vendors.create('v');
    await engine.jobs.enqueue(v.id, specs(2));
    const { jobs } = await engine.jobs.enqueue(v.id, specs(5));
    await waitUntil(() => events.length >= 7, 20_000, 'seven published events');
    const rows = await engine.store.db.selectFrom('events').select(['id', 'job_id']).orderBy('id').execute();
    expect(rows.map((r) => [Number(r.id), r.job_id])).toEqual(events.map((e) => [e.id, e.jobId]));
    expect(events.slice(2).map((e) => e.jobId)).toEqual(jobs.map((j) => j.id));
  });

  it('reports counts by state per type and vendor, wait and run percentiles, and throughput', async () => {
    let now = Date.now();
    const { engine } = await open({ now: () => now });
    const a = await engine.vendors.create('a');
    const b = await engine.vendors.create('b');
    await engine.jobs.enqueue(a.id, specs(4));
    await engine.jobs.enqueue(b.id, specs(2, { type: 'other' }));
    now += 100;
    const claimed = (await claim(engine, 'w', { noop: 2 })).jobs;
    now += 50;
    for (const job of claimed) await succeed(engine, 'w', job, { outputs: [] });
    const stats = await engine.stats(60_000);
    expect(stats.totals).toEqual({ queued: 4, succeeded: 2 });
    expect(stats.byType).toEqual({ noop: { queued: 2, succeeded: 2 }, other: { queued: 2 } });
    expect(stats.byVendor[a.id]).toEqual({ queued: 2, succeeded: 2 });
    expect(stats.window.waitMs.p50).toBe(100);
    expect(stats.window.runMs.p99).toBe(50);
    expect(stats.window.finished).toBe(2);
    const own = await engine.stats(60_000, b.id);
    expect(own.totals).toEqual({ queued: 2 });
  });

  it('deletes finished jobs past retention with their blobs, keeping blobs still in use', async () => {
    let now = Date.now();
    const { engine, dataDir } = await open({ now: () => now });
    const blobs = new FsBlobStore(dataDir, engine.blobs);
    const shared = await blobs.put(Buffer.from('shared input'), 'image/png');
    const output = await blobs.put(Buffer.from('output of old job'), 'image/png');
    const v = await engine.vendors.create('v');
    const { jobs } = await engine.jobs.enqueue(v.id, [
      { type: 'noop', inputBlob: shared.key },
      { type: 'noop', inputBlob: shared.key },
    ]);
    const [old] = (await claim(engine, 'w', { noop: 1 })).jobs;
    await succeed(engine, 'w', old, {
      outputs: [{ blob: output.key, contentType: 'image/png', width: 1, height: 1, bytes: output.bytes }],
    });
    now += 8 * 86_400_000;
    const deleted = await engine.maintenance.prune(7 * 86_400_000, (key) => blobs.delete(key));
    expect(deleted).toBe(1);
    await expect(engine.jobs.get(old.id)).rejects.toMatchObject({ code: 'not_found' });
    // The unreferenced output waits out the ledger's grace period, then the next prune's sweep deletes it.
    expect(await blobs.exists(output.key)).toBe(true);
    now += BLOB_GRACE_MS;
    await engine.maintenance.prune(7 * 86_400_000, (key) => blobs.delete(key));
    expect(await blobs.exists(output.key)).toBe(false);
    expect(await blobs.exists(shared.key)).toBe(true);
    expect((await engine.jobs.get(jobs.find((j) => j.id !== old.id)!.id)).state).toBe('queued');
  });

  it('deletes uploads past retention, and their blob once no job uses it', async () => {
    let now = Date.now();
    const { engine, dataDir } = await open({ now: () => now });
    const blobs = new FsBlobStore(dataDir, engine.blobs);
    const used = await blobs.put(Buffer.from('used by a queued job'), 'image/png');
    const unused = await blobs.put(Buffer.from('uploaded, never used'), 'image/png');
    const v = await engine.vendors.create('v');
    const image = { contentType: 'image/png', bytes: 1, width: 1, height: 1 };
    const kept = await engine.uploads.create(v.id, { ...image, blob: used.key });
    const dropped = await engine.uploads.create(v.id, { ...image, blob: unused.key });
    await engine.jobs.enqueue(v.id, [{ type: 'noop', inputBlob: kept.blob }]);
    now += 8 * 86_400_000;
    await engine.maintenance.prune(7 * 86_400_000, (key) => blobs.delete(key));
    now += BLOB_GRACE_MS;
    await engine.maintenance.prune(7 * 86_400_000, (key) => blobs.delete(key));
    await expect(engine.uploads.get(dropped.id, v.id)).rejects.toMatchObject({ code: 'not_found' });
    await expect(engine.uploads.get(kept.id, v.id)).rejects.toMatchObject({ code: 'not_found' });
    expect(await blobs.exists(unused.key)).toBe(false);
    expect(await blobs.exists(used.key)).toBe(true);
  });
});
