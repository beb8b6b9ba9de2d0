import pg from 'pg';
import PgBoss from 'pg-boss';
import { defer } from './cleanup.js';
import type { Progress, Settings, Subject } from './measure.js';
import { freshDatabase } from './postgres.js';

/**
 * How the shared concurrency is spent. pg-boss 10 has no per-worker concurrency: a work() poller fetches up
 * to `batchSize` jobs, awaits the handler for all of them, then sleeps out the rest of its polling interval
 * (0.5 s minimum). Its maintainer's advice for concurrency in v10 is a batch handled with Promise.allSettled,
 * and more work() calls for more pollers (timgit/pg-boss#542, #483).
 */
export interface PgBossShape {
  pollers: number;
  batchSize: number;
  pollingIntervalSeconds: number;
  /** Set for a reference row that does not obey the shared concurrency. */
  note?: string;
}

interface NoopData {
  ms: number;
  probe?: boolean;
}

export async function openPgBoss(s: Settings, adminUrl: string, shape: PgBossShape): Promise<Subject> {
  const url = await freshDatabase(adminUrl, 'pgboss');
  const name = 'noop';
  const boss = new PgBoss({ connectionString: url, max: 10 });
  boss.on('error', (err) => console.error('pg-boss error:', err.message));
  await boss.start();
  // The harness reads completions and start times from pg-boss's own table, on a connection of its own.
  const reader = new pg.Pool({ connectionString: url, max: 1 });
  // The database is dropped WITH (FORCE) at cleanup; a connection the server ends then must not crash the run.
  reader.on('error', () => undefined);
  defer('stop pg-boss', async () => {
    await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
    await reader.end();
  });
  await boss.createQueue(name);

  const handle = async (job: PgBoss.Job<NoopData>) => ({ sleptMs: job.data.ms });
  const concurrency = shape.pollers * shape.batchSize;
  return {
    label: `pg-boss / PostgreSQL${shape.note ? ` (${shape.note})` : ''}`,
    workerSettings:
      `${shape.pollers} work() poller(s) × batchSize ${shape.batchSize} (= ${concurrency} in flight), ` +
      `pollingIntervalSeconds ${shape.pollingIntervalSeconds}, handler Promise.allSettled, pg pool 10`,
    enqueueBulk: (count) => boss.insert(Array.from({ length: count }, () => ({ name, data: { ms: 0 } }))),
    async startWorkers() {
      const options = { batchSize: shape.batchSize, pollingIntervalSeconds: shape.pollingIntervalSeconds };
      for (let i = 0; i < shape.pollers; i++) {
        await boss.work<NoopData>(name, options, (jobs) => Promise.allSettled(jobs.map(handle)));
      }
    },
    progress: () => completed(reader, name),
    discardBacklog: () => boss.purgeQueue(name),
    enqueueProbe: async () => void (await boss.send(name, { ms: 0, probe: true })),
    probeLatencies: () => probeLatencies(reader, name),
  };
}

async function completed(reader: pg.Pool, name: string): Promise<Progress> {
  const { rows } = await reader.query<{ n: number; last: number | null }>(
    `select count(*)::int as n, (extract(epoch from max(completed_on)) * 1000)::float8 as last
       from pgboss.job where name = $1 and state = 'completed'`,
    [name],
  );
  return { finished: rows[0].n, lastFinishedAt: rows[0].last };
}

/** started_on - created_on, both stamped by PostgreSQL's now(). */
async function probeLatencies(reader: pg.Pool, name: string): Promise<number[]> {
  const { rows } = await reader.query<{ ms: number }>(
    `select (extract(epoch from started_on - created_on) * 1000)::float8 as ms
       from pgboss.job where name = $1 and (data->>'probe')::boolean and started_on is not null`,
    [name],
  );
  return rows.map((r) => r.ms);
}
