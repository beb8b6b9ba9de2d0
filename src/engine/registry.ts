import { insertJobTypeDefaults, selectJobTypes, upsertJobType, type JobTypeSettings } from '../store/sql/job-types.js';
import { deleteWorker, selectWorkers, upsertWorker } from '../store/sql/workers.js';
import type { JobTypeRow } from '../store/index.js';
import type { EngineContext } from './context.js';

export interface WorkerHealth {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  running: number;
  slots: Record<string, number>;
  stopping: boolean;
}

export interface JobTypeStatus {
  type: string;
  paused: boolean;
  maxRunning: number | null;
  rateLimit: { limit: number; windowMs: number } | null;
}

/** Job-type settings (pause, global caps and rate limits) and the health rows workers keep fresh. */
export class RegistryService {
  constructor(private readonly ctx: EngineContext) {}

  async configureType(type: string, settings: JobTypeSettings): Promise<JobTypeStatus> {
    const row = await this.ctx.write((tx) => upsertJobType(tx, type, settings));
    if (settings.paused === false) this.ctx.bus.wake([type]);
    return toTypeStatus(row);
  }

  /** Gives a type its default global rate limit unless it has settings already (an operator's are kept). */
  async defaultRateLimit(type: string, rateLimit: { limit: number; windowMs: number }): Promise<void> {
    await this.ctx.write((tx) => insertJobTypeDefaults(tx, type, rateLimit));
  }

  async types(): Promise<JobTypeStatus[]> {
    const rows = await this.ctx.read(selectJobTypes);
    return rows.map(toTypeStatus);
  }

  async reportWorker(health: WorkerHealth): Promise<void> {
    await this.ctx.write((tx) =>
      upsertWorker(tx, {
        id: health.id,
        host: health.host,
        pid: health.pid,
        started_at: health.startedAt,
        heartbeat_at: health.heartbeatAt,
        running: health.running,
        slots: JSON.stringify(health.slots),
        stopping: health.stopping ? 1 : 0,
      }),
    );
  }

  async removeWorker(id: string): Promise<void> {
    await this.ctx.write((tx) => deleteWorker(tx, id));
  }

  /** Workers that reported within three lease lengths. */
  async workers(): Promise<WorkerHealth[]> {
    const rows = await this.ctx.read((db) => selectWorkers(db, this.ctx.now() - 3 * this.ctx.options.leaseMs));
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      pid: r.pid,
      startedAt: r.started_at,
      heartbeatAt: r.heartbeat_at,
      running: r.running,
      slots: JSON.parse(r.slots) as Record<string, number>,
      stopping: r.stopping === 1,
    }));
  }
}

function toTypeStatus(row: JobTypeRow): JobTypeStatus {
  return {
    type: row.type,
    paused: row.paused === 1,
    maxRunning: row.max_running,
    rateLimit: row.rate_limit === null ? null : { limit: row.rate_limit, windowMs: row.rate_window_ms ?? 0 },
  };
}
