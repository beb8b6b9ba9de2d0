import { CompiledQuery } from 'kysely';
import { insertEvents } from '../store/sql/events.js';
import { fanOutWebhooks } from './webhook-triggers.js';
import { transaction, type Store, type Tx, type JobEventRow } from '../store/index.js';
import type { EventBus } from './event-bus.js';
import { eventFor, toStoredEvent } from './rows.js';
import type { JobEvent } from './types.js';
import type { WebhookSettings } from './webhooks.js';

export interface EngineOptions {
  leaseMs: number;
  claimBatch: number;
  defaultMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  defaultTimeoutMs: number;
  /** The storage quota of vendors without one of their own (PIXQ_MAX_STORAGE_BYTES); null or unset: none. */
  maxStorageBytes?: number | null;
  /** SQLite: how often the event bus reads the events other processes stored (at most every 250 ms). */
  eventPollMs?: number;
  /** Webhook delivery rules; Standard Webhooks' schedule when unset. */
  webhooks?: WebhookSettings;
  /** The clock; tests may move it. */
  now?: () => number;
}

const MAX_GROUP = 256;

// Compiled once: every grouped write runs two of them.
const SAVEPOINT = CompiledQuery.raw('savepoint pixq_write');
const RELEASE = CompiledQuery.raw('release savepoint pixq_write');
const ROLLBACK_TO = CompiledQuery.raw('rollback to savepoint pixq_write');

interface QueuedWrite {
  fn: (tx: Tx, emit: EmitEvents) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Collects the job rows a transaction changed so their events are stored in it and published after it. */
export type EmitEvents = (rows: JobEventRow[], kind?: JobEvent['kind']) => void;

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
   *
   * On SQLite, writes asked for in the same turn of the event loop share one transaction (group commit):
   * SQLite runs one writer at a time anyway, and the commit is the expensive part. Each write runs in its
   * own savepoint, so one that fails is rolled back alone and only its caller sees the error.
   */
  write<T>(fn: (tx: Tx, emit: EmitEvents) => Promise<T>): Promise<T> {
    if (this.store.dialect !== 'sqlite') return this.writeAlone(fn);
    return new Promise<T>((resolve, reject) => {
      this.queued.push({ fn, resolve, reject } as QueuedWrite);
      if (this.queued.length === 1) setImmediate(() => void this.flushQueued());
    });
  }

  private readonly queued: QueuedWrite[] = [];

  private async writeAlone<T>(fn: (tx: Tx, emit: EmitEvents) => Promise<T>): Promise<T> {
    const { result, events } = await transaction(this.store, (tx) => this.runWithEvents(tx, fn));
    this.bus.publish(events);
    return result;
  }

  private async flushQueued() {
    const batch = this.queued.splice(0, MAX_GROUP);
    if (this.queued.length > 0) setImmediate(() => void this.flushQueued());
    let outcomes: ({ ok: true; value: unknown; events: JobEvent[] } | { ok: false; error: unknown })[];
    try {
      outcomes = await transaction(this.store, async (tx) => {
        const done = [];
        for (const item of batch) done.push(await this.inSavepoint(tx, item.fn));
        return done;
      });
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i];
      if (!outcome.ok) return item.reject(outcome.error);
      this.bus.publish(outcome.events);
      item.resolve(outcome.value);
    });
  }

  private async inSavepoint(tx: Tx, fn: QueuedWrite['fn']) {
    await tx.executeQuery(SAVEPOINT);
    try {
      const { result, events } = await this.runWithEvents(tx, fn);
      await tx.executeQuery(RELEASE);
      return { ok: true as const, value: result, events };
    } catch (error) {
      await tx.executeQuery(ROLLBACK_TO);
      await tx.executeQuery(RELEASE);
      return { ok: false as const, error };
    }
  }

  private async runWithEvents<T>(tx: Tx, fn: (tx: Tx, emit: EmitEvents) => Promise<T>) {
    const events: JobEvent[] = [];
    const emit: EmitEvents = (rows, kind = 'state') => {
      for (const row of rows) events.push(eventFor(row, kind, this.now()));
    };
    const result = await fn(tx, emit);
    const ids = await insertEvents(tx, this.store.dialect, events.map(toStoredEvent));
    events.forEach((e, i) => (e.id = ids[i]));
    await fanOutWebhooks(tx, this.store.dialect, events, this.now());
    return { result, events };
  }

  read<T>(fn: (db: Tx) => Promise<T>): Promise<T> {
    return fn(this.store.db);
  }
}
