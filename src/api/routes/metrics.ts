import type { FastifyPluginAsync } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { JOB_STATES } from '../../engine/index.js';
import type { ApiDeps } from '../deps.js';

const WINDOW_MS = 5 * 60_000;

/**
 * Prometheus metrics (admin key; Prometheus sends it as a bearer token): the process's own metrics, and
 * job counts, wait and run times and throughput read from the store at scrape time, so every API process
 * reports the whole service.
 */
export const metricsRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'pixq_' });
    const jobs = new Gauge({
      name: 'pixq_jobs',
      help: 'Jobs by state and type',
      labelNames: ['state', 'type'],
      registers: [registry],
    });
    const wait = new Gauge({
      name: 'pixq_job_wait_seconds',
      help: 'Enqueue-to-start time of jobs finished in the last 5 minutes',
      labelNames: ['quantile'],
      registers: [registry],
    });
    const run = new Gauge({
      name: 'pixq_job_run_seconds',
      help: 'Run time of jobs finished in the last 5 minutes',
      labelNames: ['quantile'],
      registers: [registry],
    });
    const throughput = new Gauge({
      name: 'pixq_jobs_finished_per_second',
      help: 'Jobs finished per second over the last 5 minutes',
      registers: [registry],
    });

    // Read at scrape time from the delivery service's counters.
    new Gauge({
      name: 'pixq_delivery_requests',
      help: 'Delivery answers of this process since it started, by outcome (render, hit, coalesced, not_modified)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        const c = deps.delivery.counters;
        this.set({ outcome: 'render' }, c.renders);
        this.set({ outcome: 'hit' }, c.hits);
        this.set({ outcome: 'coalesced' }, c.coalesced);
        this.set({ outcome: 'not_modified' }, c.notModified);
      },
    });

    app.get(
      '/metrics',
      { config: { access: 'admin' }, schema: { tags: ['admin'], summary: 'Prometheus metrics' } },
      async (_request, reply) => {
        const stats = await deps.engine.stats(WINDOW_MS);
        jobs.reset();
        for (const [type, counts] of Object.entries(stats.byType)) {
          for (const state of JOB_STATES) jobs.set({ state, type }, counts[state] ?? 0);
        }
        for (const [gauge, percentiles] of [
          [wait, stats.window.waitMs],
          [run, stats.window.runMs],
        ] as const) {
          gauge.reset();
          for (const [quantile, ms] of [
            ['0.5', percentiles.p50],
            ['0.95', percentiles.p95],
            ['0.99', percentiles.p99],
          ] as const) {
            if (ms !== null) gauge.set({ quantile }, ms / 1000);
          }
        }
        throughput.set(stats.window.throughput);
        return reply.type(registry.contentType).send(await registry.metrics());
      },
    );
  };
