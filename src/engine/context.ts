import { insertEvents } from '../store/sql/events.js';
import { transaction, type Store, type Tx, type JobRow } from '../store/index.js';
import type { EventBus } from './event-bus.js';
import { eventFor } from './rows.js';
import type { JobEvent } from './types.js';

export interface EngineOptions {
  leaseMs: number;
  claimBatch: number;
  defaultMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  defaultTimeoutMs: number;
  /** The clock; tests may move it. */
  now?: () => number;
}

/** Collects the job rows a transaction changed so their events are stored in it and published after it. */
export type EmitEvents = (rows: JobRow[], kind?: JobEvent['kind']) => void;

/** What every engine part shares: the store, the bus, the options, and a transactional write helper. */
export class EngineContext {
  readonly now: () => number;

  constructor(
    readonly store: Store,
    readonly bus: EventBus,
    readonly options: EngineOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Runs `fn` in a transaction. The events it emits are written in the same transaction (so a state change
   * and its event commit or roll back together) and published on the bus only after the commit.
   */
  async write<T>(fn: (tx: Tx, emit: EmitEvents) => Promise<T>): Promise<T> {
    const { result, events } = await transaction(this.store, async (tx) => {
      const changed: Omit<JobEvent, 'id'>[] = [];
      const emit: EmitEvents = (rows, kind = 'state') => {
        for (const row of rows) changed.push(eventFor(row, kind, this.now()));
      };
      const result = await fn(tx, emit);
      const ids = await insertEvents(
        tx,
        changed.map((e) => ({
          vendor_id: e.vendorId,
          job_id: e.jobId,
          batch_id: e.batchId,
          payload: JSON.stringify(e),
          created_at: e.at,
        })),
      );
      return { result, events: changed.map((e, i) => ({ ...e, id: ids[i] })) };
    });
    this.bus.publish(events);
    return result;
  }

  read<T>(fn: (db: Tx) => Promise<T>): Promise<T> {
    return fn(this.store.db);
  }
}
