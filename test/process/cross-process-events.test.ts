import { expect, it } from 'vitest';
import { ADMIN_KEY, answer, openSse } from '../support/api.js';
import { TEST_MODELS_DIR } from '../support/models.js';
import { apiReady, spawnPixq, stopAll, waitUntil, workerReady } from '../support/processes.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';

/**
 * The layout of separate processes on one store: `pixq api` serves the event stream, `pixq worker` runs the
 * job. The worker's events must reach the API's stream live, on SQLite (one file, the bus tails the events
 * table) as on PostgreSQL (LISTEN/NOTIFY), so the SDK's wait() and the dashboard follow such a job.
 */
describeEachStore('live events across processes', (target) => {
  it(
    "streams a job's succeeded event from a separate worker process to the API's clients",
    { timeout: 180_000 },
    async () => {
      const location = await target.fresh();
      const env = {
        PIXQ_DATA_DIR: location.dataDir,
        DATABASE_URL: location.databaseUrl,
        PIXQ_MODELS_DIR: TEST_MODELS_DIR,
        PIXQ_ADMIN_KEY: ADMIN_KEY,
        PIXQ_ENABLE_NOOP: '1',
        PIXQ_POLL_MS: '200',
        PIXQ_DASHBOARD: '0',
        PIXQ_LOG_LEVEL: 'info',
        HOST: '127.0.0.1',
        PORT: '0',
      };
      // The worker starts once the API has migrated the new store: two processes migrating one new SQLite file
      // at once can collide (a separate defect).
      const api = spawnPixq(['api'], env);
      const processes = [api];
      try {
        const base = await apiReady(api);
        const worker = spawnPixq(['worker'], env);
        processes.push(worker);
        await workerReady(worker);
        const call = async (path: string, key: string, json: unknown) =>
          answer(
            await fetch(base + path, {
              method: 'POST',
              headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
              body: JSON.stringify(json),
            }),
          );
        const vendor = await call('/v1/vendors', ADMIN_KEY, { name: 'follower' });
        expect(vendor.status, JSON.stringify(vendor.body)).toBe(201);
        const key = vendor.body.apiKey as string;

        const stream = await openSse({ base }, '/v1/events', key);
        try {
          expect(stream.status).toBe(200);
          const submitted = await call('/v1/jobs', key, { type: 'noop', options: { ms: 50 } });
          expect(submitted.status).toBe(202);
          const jobId = submitted.body.id as string;
          const done = await stream.waitFor(
            (e) => e.data.jobId === jobId && e.data.state === 'succeeded',
            60_000,
            "the worker's succeeded event on the API's stream",
          );
          // Live from the worker process, each event once (PostgreSQL's notifications from two processes may
          // arrive out of id order; ids give the order).
          const states = stream.events.filter((e) => e.data.jobId === jobId && e.data.kind === 'state');
          const byId = [...states].sort((a, b) => Number(a.id) - Number(b.id));
          expect(byId.map((e) => e.data.state)).toEqual(['queued', 'running', 'succeeded']);
          expect(byId.at(-1)!.id).toBe(done.id);
        } finally {
          stream.close();
        }
        await waitUntil(() => api.child.exitCode === null, 1000, 'the API to keep running');
      } finally {
        await stopAll(processes);
        await dropDatabase(location.databaseUrl);
      }
    },
  );
});
