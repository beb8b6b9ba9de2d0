import { beforeAll, describe, expect, it } from 'vitest';
import { METADATA_INDEX } from '@pixq/client/schemas';
import { BulkActionResult, JobList, StatsSeries, WhoAmI } from '../../src/api/schemas.js';
import { transaction } from '../../src/store/index.js';
import { deleteFinishedJobs } from '../../src/store/sql/delete-finished-jobs.js';
import { describeEachStore } from '../support/stores.js';
import { ADMIN_KEY, expectProblem, expectShape, waitForJob, useApi } from '../support/api.js';

/** The job routes the dashboard uses: metadata filter, counts, bulk cancel and retry, the per-minute series, whoami. */
describeEachStore('dashboard job routes', (target) => {
  const api = useApi(target);
  let v: { id: string; key: string };
  const ids: Record<string, string> = {};

  const submit = (key: string, metadata?: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    api()
      .call('POST', '/v1/jobs', { key, json: { type: 'noop', metadata, ...extra } })
      .then((r) => {
        expect(r.status).toBe(202);
        return r.body.id as string;
      });
  const list = async (key: string, query: string) => {
    const res = await api().call('GET', `/v1/jobs?${query}`, { key });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expectShape(JobList, res.body);
    return res.body as { jobs: { id: string; state: string }[]; nextCursor: string | null };
  };

  beforeAll(async () => {
    v = await api().vendor();
    ids.a = await submit(v.key, {
      recordId: 'r-1',
      source: 'shop',
      page: 3,
      flag: true,
      nested: { x: 1 },
      long: 'x'.repeat(METADATA_INDEX.maxValueLength + 1),
    });
    ids.b = await submit(v.key, { recordId: 'r-2', source: 'shop', page: 4 });
    ids.c = await submit(v.key, { recordId: 'r-3', source: 'web', page: 3 });
    ids.plain = await submit(v.key);
  });

  describe('metadata filter', () => {
    it('finds jobs by a top-level value, compared as a string, and ANDs repeated pairs', async () => {
      expect((await list(v.key, 'metadata=recordId=r-2')).jobs.map((j) => j.id)).toEqual([ids.b]);
      expect((await list(v.key, 'metadata=source=shop')).jobs.map((j) => j.id)).toEqual([ids.b, ids.a]);
      expect((await list(v.key, 'metadata=page=3')).jobs.map((j) => j.id)).toEqual([ids.c, ids.a]);
      expect((await list(v.key, 'metadata=flag=true')).jobs.map((j) => j.id)).toEqual([ids.a]);
      expect((await list(v.key, 'metadata=source=shop&metadata=page=3')).jobs.map((j) => j.id)).toEqual([ids.a]);
      expect((await list(v.key, 'metadata=source=web&metadata=page=4')).jobs).toEqual([]);
      // A value containing "=" splits at the first one.
      const eq = await submit(v.key, { formula: 'a=b' });
      expect((await list(v.key, `metadata=${encodeURIComponent('formula=a=b')}`)).jobs.map((j) => j.id)).toEqual([eq]);
    });

    it('does not index nested values or values longer than the bound', async () => {
      expect((await list(v.key, `metadata=${encodeURIComponent('nested=[object Object]')}`)).jobs).toEqual([]);
      expect((await list(v.key, `metadata=${encodeURIComponent('nested={"x":1}')}`)).jobs).toEqual([]);
      // Asking for a value the index cannot hold is a 400, not a silent empty page.
      const tooLong = await api().call(
        'GET',
        `/v1/jobs?metadata=long=${'x'.repeat(METADATA_INDEX.maxValueLength + 1)}`,
        { key: v.key },
      );
      expectProblem(tooLong, 400, 'validation_failed');
      for (const bad of ['noequals', '=value', `${'k'.repeat(METADATA_INDEX.maxKeyLength + 1)}=v`]) {
        expectProblem(
          await api().call('GET', `/v1/jobs?metadata=${encodeURIComponent(bad)}`, { key: v.key }),
          400,
          'validation_failed',
        );
      }
      const tooMany = Array.from({ length: METADATA_INDEX.maxFilters + 1 }, (_, i) => `metadata=k${i}=v`).join('&');
      expectProblem(await api().call('GET', `/v1/jobs?${tooMany}`, { key: v.key }), 400, 'validation_failed');
    });

    it('pages newest first with the cursor, and combines with the other filters', async () => {
      const first = await list(v.key, 'metadata=source=shop&limit=1');
      expect(first.jobs.map((j) => j.id)).toEqual([ids.b]);
      const second = await list(v.key, `metadata=source=shop&limit=1&cursor=${first.nextCursor}`);
      expect(second.jobs.map((j) => j.id)).toEqual([ids.a]);
      expect(second.nextCursor).toBeNull();
      await api().call('POST', `/v1/jobs/${ids.a}/cancel`, { key: v.key });
      expect((await list(v.key, 'metadata=source=shop&state=cancelled')).jobs.map((j) => j.id)).toEqual([ids.a]);
      expect((await list(v.key, 'metadata=source=shop&state=queued')).jobs.map((j) => j.id)).toEqual([ids.b]);
      await api().call('POST', `/v1/jobs/${ids.a}/retry`, { key: v.key });
    });

    it("sees only the caller's jobs", async () => {
      const other = await api().vendor();
      const theirs = await submit(other.key, { recordId: 'r-1' });
      expect((await list(v.key, 'metadata=recordId=r-1')).jobs.map((j) => j.id)).toEqual([ids.a]);
      expect((await list(other.key, 'metadata=recordId=r-1')).jobs.map((j) => j.id)).toEqual([theirs]);
      const all = await list(ADMIN_KEY, 'metadata=recordId=r-1');
      expect(all.jobs.map((j) => j.id)).toEqual([theirs, ids.a]);
      expect((await list(ADMIN_KEY, `metadata=recordId=r-1&vendorId=${v.id}`)).jobs.map((j) => j.id)).toEqual([ids.a]);
    });

    it('drops the index entries of a job deleted by retention', async () => {
      const doomed = await submit(v.key, { recordId: 'doomed' });
      await api().call('POST', `/v1/jobs/${doomed}/cancel`, { key: v.key });
      const store = api().services.engine.store;
      await transaction(store, (tx) => deleteFinishedJobs(tx, Date.now() + 60_000, 1000));
      const left = await store.db.selectFrom('job_metadata').select('job_id').where('job_id', '=', doomed).execute();
      expect(left).toEqual([]);
      expect((await list(v.key, 'metadata=recordId=doomed')).jobs).toEqual([]);
      // Jobs that were not deleted keep theirs.
      expect((await list(v.key, 'metadata=recordId=r-2')).jobs.map((j) => j.id)).toEqual([ids.b]);
    });
  });

  it('counts the jobs a filter matches', async () => {
    const count = async (key: string, query: string) => {
      const res = await api().call('GET', `/v1/jobs/count?${query}`, { key });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.count as number;
    };
    const total = (await list(v.key, 'limit=100')).jobs.length;
    expect(await count(v.key, '')).toBe(total);
    expect(await count(v.key, 'metadata=source=shop')).toBe(2);
    expect(await count(v.key, 'metadata=source=shop&metadata=page=3')).toBe(1);
    expect(await count(v.key, 'state=succeeded')).toBe(0);
    expect(await count(ADMIN_KEY, `vendorId=${v.id}`)).toBe(total);
    expect(await count(ADMIN_KEY, '')).toBeGreaterThan(total);
    expectProblem(await api().call('GET', '/v1/jobs/count?limit=5', { key: v.key }), 400, 'validation_failed');
  });

  describe('bulk cancel and retry', () => {
    it('cancel the matching queued jobs and retry them, each with its event', async () => {
      const tag = `bulk-${target.name}`;
      const jobs = [];
      for (let i = 0; i < 5; i++) jobs.push(await submit(v.key, { tag }));
      const since = (await api().call('GET', `/v1/jobs/${jobs[0]}`, { key: v.key })).body;
      expect(since.state).toBe('queued');
      const cancel = await api().call('POST', '/v1/jobs/cancel', { key: v.key, json: { metadata: [`tag=${tag}`] } });
      expect(cancel.status, JSON.stringify(cancel.body)).toBe(200);
      expectShape(BulkActionResult, cancel.body);
      expect(cancel.body).toEqual({ matched: 5, changed: 5, more: false });
      expect((await list(v.key, `metadata=tag=${tag}&state=cancelled`)).jobs).toHaveLength(5);
      // Nothing left to cancel; retry only takes failed and cancelled jobs, so a state filter outside them matches none.
      expect(
        (await api().call('POST', '/v1/jobs/cancel', { key: v.key, json: { metadata: [`tag=${tag}`] } })).body,
      ).toEqual({ matched: 0, changed: 0, more: false });
      expect(
        (
          await api().call('POST', '/v1/jobs/retry', {
            key: v.key,
            json: { metadata: [`tag=${tag}`], state: 'queued' },
          })
        ).body,
      ).toEqual({ matched: 0, changed: 0, more: false });
      const retry = await api().call('POST', '/v1/jobs/retry', { key: v.key, json: { metadata: [`tag=${tag}`] } });
      expect(retry.body).toEqual({ matched: 5, changed: 5, more: false });
      expect((await list(v.key, `metadata=tag=${tag}&state=queued`)).jobs).toHaveLength(5);
      // Each job went through the single-job code: a cancelled and a queued event each, stored for replay.
      const events = await api().services.engine.jobs.eventsAfter({ vendorId: v.id, afterId: 0, limit: 1000 });
      for (const id of jobs) {
        expect(events.filter((e) => e.jobId === id).map((e) => e.state)).toEqual(['queued', 'cancelled', 'queued']);
      }
    });

    it('flag running jobs, and leave them out once flagged', async () => {
      const tag = `running-${target.name}`;
      const id = await submit(v.key, { tag }, { options: { ms: 60_000 } });
      const stop = await api().startWorker();
      try {
        await waitForJob(api(), v.key, id, ['running']);
        expect(
          (await api().call('POST', '/v1/jobs/cancel', { key: v.key, json: { metadata: [`tag=${tag}`] } })).body,
        ).toEqual({ matched: 1, changed: 1, more: false });
        await waitForJob(api(), v.key, id, ['cancelled']);
      } finally {
        await stop();
      }
    });

    it('refuse a body with unknown fields and a metadata filter that is not key=value', async () => {
      expectProblem(
        await api().call('POST', '/v1/jobs/cancel', { key: v.key, json: { cursor: 'x' } }),
        400,
        'validation_failed',
      );
      expectProblem(
        await api().call('POST', '/v1/jobs/retry', { key: v.key, json: { metadata: ['nope'] } }),
        400,
        'validation_failed',
      );
      expectProblem(
        await api().call('POST', '/v1/jobs/retry', { key: v.key, json: { metadata: 'tag=x' } }),
        400,
        'validation_failed',
      );
    });

    it('stop at the per-call maximum and say more remain', async () => {
      const tag = `max-${target.name}`;
      for (let i = 0; i < 3; i++) await submit(v.key, { tag });
      const jobs = api().services.engine.jobs;
      const first = await jobs.actionable('cancel', v.id, { metadata: [{ key: 'tag', value: tag }] }, 2);
      expect([first.jobs.length, first.more]).toEqual([2, true]);
      expect(
        await jobs.actOnAll(
          'cancel',
          first.jobs.map((j) => j.id),
          v.id,
        ),
      ).toBe(2);
      const rest = await jobs.actionable('cancel', v.id, { metadata: [{ key: 'tag', value: tag }] }, 2);
      expect([rest.jobs.length, rest.more]).toEqual([1, false]);
    });
  });

  it('whoami names the vendor or the admin; a wrong key is 401', async () => {
    const mine = await api().call('GET', '/v1/whoami', { key: v.key });
    expectShape(WhoAmI, mine.body);
    expect(mine.body).toEqual({ kind: 'vendor', vendor: { id: v.id, name: expect.any(String) } });
    expect((await api().call('GET', '/v1/whoami', { key: ADMIN_KEY })).body).toEqual({ kind: 'admin' });
    expectProblem(await api().call('GET', '/v1/whoami', { key: 'pixq_wrong' }), 401, 'unauthorized');
    expectProblem(await api().call('GET', '/v1/whoami'), 401, 'unauthorized');
  });

  it('the stats series has a bucket per minute with what finished in it, per vendor or for all', async () => {
    const own = await api().vendor();
    const done = [await submit(own.key), await submit(own.key)];
    const failing = await submit(own.key, undefined, { options: { ms: 5000 }, timeoutMs: 100, maxAttempts: 1 });
    const stop = await api().startWorker();
    try {
      for (const id of done) await waitForJob(api(), own.key, id, ['succeeded']);
      await waitForJob(api(), own.key, failing, ['failed']);
    } finally {
      await stop();
    }
    const minute = (t: number) => Math.floor(t / 60_000) * 60_000;
    let asked = { from: 0, to: 0 };
    const series = async (key: string, minutes: number) => {
      asked = { from: Date.now(), to: 0 };
      const res = await api().call('GET', `/v1/stats/series?minutes=${minutes}`, { key });
      asked.to = Date.now();
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectShape(StatsSeries, res.body);
      return res.body as StatsSeries;
    };
    const sum = (s: StatsSeries, field: 'finished' | 'failed') => s.buckets.reduce((n, b) => n + b[field], 0);
    const mine = await series(own.key, 5);
    expect(mine.buckets).toHaveLength(5);
    const at = mine.buckets.map((b) => Date.parse(b.at));
    expect(at.every((t, i) => t % 60_000 === 0 && (i === 0 || t - at[i - 1] === 60_000))).toBe(true);
    // The last bucket is the minute the request was answered in.
    expect(at[4]).toBeGreaterThanOrEqual(minute(asked.from));
    expect(at[4]).toBeLessThanOrEqual(minute(asked.to));
    expect([sum(mine, 'finished'), sum(mine, 'failed')]).toEqual([3, 1]);
    const busy = mine.buckets.find((b) => b.finished > 0)!;
    expect(busy.runMs.p50).toEqual(expect.any(Number));
    expect(busy.waitMs.p95).toEqual(expect.any(Number));
    expect(mine.buckets.find((b) => b.finished === 0)?.runMs ?? { p50: null, p95: null }).toEqual({
      p50: null,
      p95: null,
    });
    // Another vendor sees none of them; the admin sees them with everyone's.
    const stranger = await api().vendor();
    expect(sum(await series(stranger.key, 5), 'finished')).toBe(0);
    expect(sum(await series(ADMIN_KEY, 5), 'finished')).toBeGreaterThanOrEqual(3);
    expect((await series(own.key, 1440)).buckets).toHaveLength(1440);
    expectProblem(await api().call('GET', '/v1/stats/series?minutes=1441', { key: own.key }), 400, 'validation_failed');
    expectProblem(await api().call('GET', '/v1/stats/series?minutes=0', { key: own.key }), 400, 'validation_failed');
  });
});
