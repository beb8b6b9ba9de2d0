import { afterEach } from 'vitest';
import {
  openEngine,
  type Engine,
  type EngineOptions,
  type Job,
  type JobState,
  type Outcome,
} from '../../src/engine/index.js';
import { dropDatabase, type StoreTarget } from './stores.js';

export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

/** A clock the test moves by hand, starting at the real time. */
export function manualClock(): TestClock {
  let time = Date.now();
  return { now: () => time, advance: (ms) => void (time += ms) };
}

export const DEFAULT_OPTIONS: EngineOptions = {
  leaseMs: 30_000,
  claimBatch: 32,
  defaultMaxAttempts: 3,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  defaultTimeoutMs: 60_000,
};

export interface TestEngine {
  engine: Engine;
  dataDir: string;
  databaseUrl?: string;
}

/**
 * Opens an engine on a fresh store for the current test; it is closed (and its PostgreSQL database
 * dropped) after the test.
 */
export function useEngine(target: StoreTarget) {
  const opened: TestEngine[] = [];
  afterEach(async () => {
    for (const t of opened.splice(0)) {
      await t.engine.close();
      await dropDatabase(t.databaseUrl);
    }
  });
  return async (options: Partial<EngineOptions> = {}): Promise<TestEngine> => {
    const location = await target.fresh();
    const engine = await openEngine(location, { ...DEFAULT_OPTIONS, ...options });
    const t = { engine, ...location };
    opened.push(t);
    return t;
  };
}

/** Claims jobs as a worker with nothing to record does: the engine's one claim path, without successes. */
export async function claim(engine: Engine, owner: string, slots: Record<string, number>) {
  return (await engine.work.finishAndClaim(owner, [], slots)).claimed;
}

/** Records one success as a worker does; false when the lease was lost meanwhile. */
export async function succeed(engine: Engine, owner: string, job: Job, outcome: Outcome): Promise<boolean> {
  const { recorded } = await engine.work.finishAndClaim(owner, [{ job, ...outcome }], {});
  return recorded[0];
}

/** Claims one job at a time and completes it at once, returning the vendor ids in claim order. */
export async function drainOneByOne(engine: Engine, type: string, claims: number): Promise<string[]> {
  const order: string[] = [];
  for (let i = 0; i < claims; i++) {
    const { jobs } = await claim(engine, 'w', { [type]: 1 });
    if (jobs.length === 0) break;
    order.push(jobs[0].vendorId);
    await succeed(engine, 'w', jobs[0], { outputs: [] });
  }
  return order;
}

export function specs(n: number, spec: { type: string } & Record<string, unknown> = { type: 'noop' }) {
  return Array.from({ length: n }, () => ({ ...spec }));
}

/** How many of a vendor's jobs are in `state` now, read straight from the store. */
export async function countJobs(engine: Engine, vendorId: string, state: JobState): Promise<number> {
  const row = await engine.store.db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('vendor_id', '=', vendorId)
    .where('state', '=', state)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
