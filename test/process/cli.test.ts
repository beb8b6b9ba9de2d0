import { expect, it } from 'vitest';
import { openEngine } from '../../src/engine/index.js';
import { LATEST_MIGRATION } from '../../src/store/index.js';
import { DEFAULT_OPTIONS } from '../support/engine.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';
import { spawnPixq, waitUntil, workerCluster } from '../support/processes.js';

describeEachStore('the pixq command', (target) => {
  it(
    'SIGTERM: a worker stops claiming, returns an unfinished job to the queue and exits 0',
    { timeout: 60_000 },
    async () => {
      const cluster = await workerCluster(target, {
        PIXQ_WORKER_CONCURRENCY: 'noop=1',
        PIXQ_SHUTDOWN_GRACE_MS: '300',
        PIXQ_POLL_MS: '50',
      });
      try {
        const vendor = await cluster.engine.vendors.create('v');
        const { jobs } = await cluster.engine.jobs.enqueue(vendor.id, [{ type: 'noop', options: { ms: 60_000 } }]);
        await waitUntil(
          async () => (await cluster.engine.jobs.get(jobs[0].id)).state === 'running',
          20_000,
          'the job to run',
        );
        const { leaseOwner } = await cluster.engine.jobs.get(jobs[0].id);
        const holder = cluster.workers.find((w) => leaseOwner?.includes(`-${w.pid}-`))!;
        holder.child.kill('SIGTERM');
        expect(await holder.exited).toBe(0);
        const job = await cluster.engine.jobs.get(jobs[0].id);
        // Back in the queue without spending an attempt (another worker may already have taken it again).
        expect(['queued', 'running']).toContain(job.state);
        expect(job.leaseOwner).not.toBe(leaseOwner);
        expect(job.attempts).toBeLessThanOrEqual(1);
      } finally {
        await cluster.close();
      }
    },
  );

  it(
    '`vendor create` prints the new key as its last line, and the key authenticates',
    { timeout: 60_000 },
    async () => {
      const location = await target.fresh();
      const env = { PIXQ_DATA_DIR: location.dataDir, DATABASE_URL: location.databaseUrl };
      const create = spawnPixq(['vendor', 'create', 'acme', '--weight', '2', '--max-concurrency', '3'], env);
      expect(await create.exited).toBe(0);
      const key = String(create.logs.at(-1)?.msg);
      expect(key).toMatch(/^pixq_[A-Za-z0-9_-]{43}$/);
      const engine = await openEngine(location, DEFAULT_OPTIONS);
      try {
        expect(await engine.apiKeys.authenticate(key)).toMatchObject({ name: 'acme', weight: 2, maxRunning: 3 });
      } finally {
        await engine.close();
        await dropDatabase(location.databaseUrl);
      }
    },
  );

  it(
    '`migrate` on a fresh store says which migrations it applied; run again, that the database is up to date',
    { timeout: 180_000 },
    async () => {
      const location = await target.fresh();
      const env = { PIXQ_DATA_DIR: location.dataDir, DATABASE_URL: location.databaseUrl };
      try {
        const first = spawnPixq(['migrate'], env);
        expect(await first.exited).toBe(0);
        expect(String(first.logs.at(-1)?.msg)).toMatch(new RegExp(`^applied: 0001-initial, .*${LATEST_MIGRATION}$`));
        const second = spawnPixq(['migrate'], env);
        expect(await second.exited).toBe(0);
        expect(second.logs.at(-1)?.msg).toBe('database is up to date');
      } finally {
        await dropDatabase(location.databaseUrl);
      }
    },
  );
});
