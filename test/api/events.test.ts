import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { spawnPixq, stopAll, waitUntil, workerReady } from '../support/processes.js';
import { ADMIN_KEY, expectProblem, openSse, testEnv, useApi, type SseStream } from '../support/api.js';

/**
 * GET /v1/events over a real socket: live updates, the jobId/batchId filters, Last-Event-ID resume
 * (including more than one replay page), heartbeats, and on PostgreSQL events of a job that a separate
 * worker process finished.
 */
describeEachStore('event stream', (target) => {
  const api = useApi(target, { PIXQ_WORKER_CONCURRENCY: 'noop=2' });
  const streams: SseStream[] = [];
  const open = async (path: string, key: string, headers: Record<string, string> = {}) => {
    const s = await openSse(api(), path, key, headers);
    streams.push(s);
    return s;
  };
  const closeAll = () => streams.splice(0).forEach((s) => s.close());
  const submit = async (key: string, body: unknown = { type: 'noop' }) => {
    const res = await api().call('POST', '/v1/jobs', { key, json: body });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };

  it('streams a job through queued, running and succeeded, with ids in order', async () => {
    const { key } = await api().vendor();
    const stream = await open('/v1/events', key);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).toMatch(/no-cache/);
    const id = await submit(key, { type: 'noop', options: { ms: 20 } });
    const stop = await api().startWorker();
    try {
      await stream.waitFor((e) => e.data.jobId === id && e.data.state === 'succeeded', 15_000, 'succeeded');
      const states = stream.events.filter((e) => e.data.kind === 'state').map((e) => e.data.state);
      expect(states).toEqual(['queued', 'running', 'succeeded']);
      const ids = stream.events.map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(ids.length);
      expect(stream.events.every((e) => e.event === 'job' && e.data.jobId === id && Number(e.id) === e.data.id)).toBe(
        true,
      );
      expect(stream.events.at(-1)!.data).toMatchObject({
        type: 'noop',
        state: 'succeeded',
        attempts: 1,
        batchId: null,
        error: null,
      });
    } finally {
      await stop();
      closeAll();
    }
  });

  it('filters by jobId and by batchId', async () => {
    const { key } = await api().vendor();
    const a = await submit(key);
    const b = await submit(key);
    const bulk = await api().call('POST', '/v1/jobs/bulk', {
      key,
      json: { jobs: [{ type: 'noop' }, { type: 'noop' }] },
    });
    const onlyA = await open(`/v1/events?jobId=${a}`, key);
    const onlyBatch = await open(`/v1/events?batchId=${bulk.body.batchId}`, key);
    const everything = await open('/v1/events', key);
    try {
      for (const id of [a, b, ...bulk.body.jobIds]) await api().call('POST', `/v1/jobs/${id}/cancel`, { key });
      await everything.waitFor((e) => e.data.jobId === bulk.body.jobIds[1], 10_000, 'the last cancel');
      await onlyBatch.waitFor(
        (e) => e.data.jobId === bulk.body.jobIds[1],
        10_000,
        'the last cancel on the batch stream',
      );
      expect(everything.events.map((e) => e.data.jobId)).toEqual([a, b, ...bulk.body.jobIds]);
      expect(onlyA.events.map((e) => [e.data.jobId, e.data.state])).toEqual([[a, 'cancelled']]);
      expect(onlyBatch.events.map((e) => e.data.jobId)).toEqual(bulk.body.jobIds);
      expect(onlyBatch.events.every((e) => e.data.batchId === bulk.body.batchId)).toBe(true);
    } finally {
      closeAll();
    }
  });

  it('resumes after Last-Event-ID: what was missed, in order, then live, nothing twice', async () => {
    const { key } = await api().vendor();
    const first = await open('/v1/events', key);
    const x = await submit(key);
    const seen = await first.waitFor((e) => e.data.jobId === x, 10_000, 'x queued');
    first.close();
    // Missed while disconnected:
    await api().call('POST', `/v1/jobs/${x}/cancel`, { key });
    const y = await submit(key);
    const resumed = await open('/v1/events', key, { 'last-event-id': seen.id! });
    try {
      await resumed.waitFor((e) => e.data.jobId === y, 10_000, 'the missed y');
      const z = await submit(key); // live after the replay
      await resumed.waitFor((e) => e.data.jobId === z, 10_000, 'live z');
      expect(resumed.events.map((e) => [e.data.jobId, e.data.state])).toEqual([
        [x, 'cancelled'],
        [y, 'queued'],
        [z, 'queued'],
      ]);
      expect(resumed.events.every((e) => Number(e.id) > Number(seen.id))).toBe(true);
    } finally {
      closeAll();
    }
  });

  it('replays more than one page (1000 events) of missed events without a gap', async () => {
    const { key, id: vendorId } = await api().vendor();
    const live = await open('/v1/events', key);
    const marker = await submit(key);
    const start = await live.waitFor((e) => e.data.jobId === marker, 10_000, 'the marker');
    live.close();
    await api().services.engine.jobs.enqueue(
      vendorId,
      Array.from({ length: 1100 }, () => ({ type: 'noop' })),
    );
    const resumed = await open('/v1/events', key, { 'last-event-id': start.id! });
    try {
      await resumed.waitFor(() => resumed.events.length >= 1100, 60_000, '1100 replayed events');
      // A job submitted now arrives after anything the replay could still send: once it is here, the
      // stream has shown everything before it, so a duplicate or extra replayed event would be seen.
      const after = await submit(key);
      await resumed.waitFor((e) => e.data.jobId === after, 60_000, 'the job submitted after the replay');
      const replayed = resumed.events.slice(
        0,
        resumed.events.findIndex((e) => e.data.jobId === after),
      );
      expect(replayed).toHaveLength(1100);
      const ids = replayed.map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(replayed.map((e) => e.data.jobId)).size).toBe(1100);
    } finally {
      closeAll();
    }
  });

  it('sends heartbeat comments while idle and leaves no bus listener behind when clients go', async () => {
    const { key } = await api().vendor();
    // Internal, but it is exactly what leaks when a stream's cleanup does not run.
    const listeners = () =>
      (api().services.engine.bus as unknown as { emitter: { listenerCount(e: string): number } }).emitter.listenerCount(
        'event',
      );
    const before = listeners();
    const idle = await open('/v1/events', key);
    const heartbeats = () => idle.comments.filter((c) => c === 'heartbeat').length;
    await waitUntil(() => heartbeats() >= 2, 30_000, 'two heartbeats'); // every 200 ms in tests
    expect(heartbeats()).toBeGreaterThanOrEqual(2);
    expect(idle.events).toEqual([]);
    for (let i = 0; i < 10; i++) (await open('/v1/events', key, { 'last-event-id': '1' })).close();
    closeAll();
    await waitUntil(() => listeners() === before, 30_000, 'the streams to release their bus listeners');
    expect(listeners()).toBe(before);
  });

  it('refuses a malformed Last-Event-ID with 400 before opening the stream', async () => {
    const { key } = await api().vendor();
    for (const bad of ['abc', '1e400', '-1', '99999999999999999999', '1.5']) {
      const s = await open('/v1/events', key, { 'last-event-id': bad });
      expect([s.status, s.body?.code], bad).toEqual([400, 'validation_failed']);
    }
    closeAll();
  });

  // The admin key's stream of every vendor's events: admin-scope.test.ts.
  it('needs a key: no key or a wrong one is 401', async () => {
    expectProblem(await api().call('GET', '/v1/events'), 401, 'unauthorized');
    expectProblem(await api().call('GET', '/v1/events', { key: `${ADMIN_KEY}x` }), 401, 'unauthorized');
  });

  it.runIf(target.name === 'postgres')(
    'delivers events of a job that a separate worker process ran',
    { timeout: 60_000 },
    async () => {
      const { key } = await api().vendor();
      // This API process runs no worker: the job can only be finished by the child.
      const child = spawnPixq(
        ['worker'],
        testEnv(
          { dataDir: api().dataDir, databaseUrl: api().databaseUrl },
          { PIXQ_LOG_LEVEL: 'info', PIXQ_WORKER_CONCURRENCY: 'noop=2' },
        ),
      );
      try {
        await workerReady(child);
        const stream = await open('/v1/events', key);
        const id = await submit(key, { type: 'noop', options: { ms: 10 } });
        await stream.waitFor(
          (e) => e.data.jobId === id && e.data.state === 'succeeded',
          20_000,
          'succeeded from the other process',
        );
        expect(stream.events.map((e) => e.data.state)).toEqual(['queued', 'running', 'succeeded']);
        const workers = await api().call('GET', '/v1/workers', { key: ADMIN_KEY });
        expect(workers.body.workers.map((w: { pid: number }) => w.pid)).toEqual([child.pid]);
      } finally {
        closeAll();
        await stopAll([child]);
      }
    },
  );
});
