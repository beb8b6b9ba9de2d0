import { expect, it } from 'vitest';
import { describeEachStore } from '../support/stores.js';
import { waitUntil, workerCluster, type PixqProcess } from '../support/processes.js';

const JOBS = 2000;

interface Interval {
  pid: number;
  start: number;
  end: number;
}

/** Per job, when each worker process ran it: from its `job started` to its `job finished` log line. */
function runIntervals(processes: PixqProcess[], killed: { pid: number; at: number }) {
  const byJob = new Map<string, Interval[]>();
  for (const p of processes) {
    const open = new Map<string, number>();
    for (const line of p.logs) {
      const jobId = line.jobId as string | undefined;
      if (!jobId) continue;
      if (line.msg === 'job started') open.set(jobId, line.time as number);
      if (line.msg === 'job finished' && open.has(jobId)) {
        push(byJob, jobId, { pid: p.pid, start: open.get(jobId)!, end: line.time as number });
        open.delete(jobId);
      }
    }
    // A job the killed worker never finished ran on it until the kill.
    for (const [jobId, start] of open)
      if (p.pid === killed.pid) push(byJob, jobId, { pid: p.pid, start, end: killed.at });
  }
  return byJob;
}

function push(map: Map<string, Interval[]>, key: string, value: Interval) {
  map.set(key, [...(map.get(key) ?? []), value]);
}

describeEachStore('crash: SIGKILL a worker mid-run', (target) => {
  it(`all ${JOBS} jobs succeed and no job runs on two live workers at once`, { timeout: 180_000 }, async () => {
    const cluster = await workerCluster(target, {
      PIXQ_WORKER_CONCURRENCY: 'noop=4',
      PIXQ_LEASE_MS: '3000',
      PIXQ_POLL_MS: '100',
      PIXQ_LOG_LEVEL: 'debug',
    });
    const { engine, workers } = cluster;
    try {
      const vendor = await engine.vendors.create('bulk');
      await engine.jobs.enqueue(
        vendor.id,
        Array.from({ length: JOBS }, () => ({ type: 'noop', options: { ms: 15 } })),
      );
      const succeeded = async () => (await engine.stats(3_600_000)).totals.succeeded ?? 0;
      await waitUntil(async () => (await succeeded()) >= JOBS / 4, 60_000, 'a quarter of the jobs');

      // Kill a worker while it holds jobs (a `job started` with no `job finished` yet).
      const victim = workers[0];
      const holding = () => {
        const started = new Set(victim.logs.filter((l) => l.msg === 'job started').map((l) => l.jobId));
        for (const l of victim.logs) if (l.msg === 'job finished') started.delete(l.jobId);
        return started.size > 0;
      };
      await waitUntil(holding, 30_000, 'the victim to hold running jobs');
      victim.child.kill('SIGKILL');
      const killed = { pid: victim.pid, at: Date.now() };
      await victim.exited;
      workers.push(cluster.spawnWorker());

      await waitUntil(async () => (await succeeded()) === JOBS, 120_000, 'every job to succeed');
      const totals = (await engine.stats(3_600_000)).totals;
      expect(totals).toEqual({ succeeded: JOBS });

      // The kill really hit running jobs: their leases expired and they ran again, on a surviving worker.
      // (A job claimed just before the kill may have no `job started` line from the victim: it died first.)
      const rerun = await engine.store.db.selectFrom('jobs').select('id').where('attempts', '>=', 2).execute();
      expect(rerun.length).toBeGreaterThan(0);
      const intervals = runIntervals(workers, killed);
      for (const { id } of rerun) {
        expect(
          intervals.get(id)!.some((r) => r.pid !== killed.pid),
          `job ${id} ran again elsewhere`,
        ).toBe(true);
      }
      for (const [jobId, runs] of intervals) {
        for (const a of runs) {
          for (const b of runs) {
            if (a !== b && a.pid !== b.pid) {
              expect(a.end <= b.start || b.end <= a.start, `job ${jobId} ran on ${a.pid} and ${b.pid} at once`).toBe(
                true,
              );
            }
          }
        }
      }
    } finally {
      await cluster.close();
    }
  });
});
