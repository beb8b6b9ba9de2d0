import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { Store } from '../store/index.js';
import { selectEventsAfter, selectLastEventId } from '../store/sql/events.js';
import { backoffDelay } from './backoff.js';
import { fromStoredEvent } from './rows.js';
import { SeenIds } from './seen-ids.js';
import type { JobEvent } from './types.js';

/**
 * How the engine tells other parts (workers, the SSE stream, webhooks) what happened. Three signals:
 * job events, "jobs are ready for these types" wake-ups, and cancel requests for running jobs.
 * In one process an EventEmitter carries them; across processes on PostgreSQL, LISTEN/NOTIFY does.
 */
export interface EventBus {
  publish(events: JobEvent[]): void;
  wake(types: string[]): void;
  requestCancel(jobId: string): void;
  onEvent(listener: (event: JobEvent) => void): () => void;
  onWake(listener: (types: string[]) => void): () => void;
  onCancel(listener: (jobId: string) => void): () => void;
  /** After the bus lost its connection and has it again, having delivered the `caughtUp` events it missed. */
  onReconnect(listener: (info: { caughtUp: number }) => void): () => void;
  close(): Promise<void>;
}

type Signal = 'event' | 'wake' | 'cancel';

class LocalEventBus implements EventBus {
  protected readonly emitter = new EventEmitter();

  constructor() {
    // Every SSE connection subscribes; thousands of listeners are expected, not a leak.
    this.emitter.setMaxListeners(0);
  }

  publish(events: JobEvent[]) {
    for (const event of events) this.emitter.emit('event', event);
  }
  wake(types: string[]) {
    this.emitter.emit('wake', types);
  }
  requestCancel(jobId: string) {
    this.emitter.emit('cancel', jobId);
  }
  onEvent(listener: (event: JobEvent) => void) {
    return this.on('event', listener);
  }
  onWake(listener: (types: string[]) => void) {
    return this.on('wake', listener);
  }
  onCancel(listener: (jobId: string) => void) {
    return this.on('cancel', listener);
  }
  /** An in-process bus has no connection to lose. */
  onReconnect(_listener: (info: { caughtUp: number }) => void) {
    return () => undefined;
  }
  async close() {
    this.emitter.removeAllListeners();
  }
  private on<T>(signal: Signal, listener: (value: T) => void) {
    this.emitter.on(signal, listener);
    return () => void this.emitter.off(signal, listener);
  }
}

export function createLocalEventBus(): EventBus {
  return new LocalEventBus();
}

const CHANNEL: Record<Signal, string> = { event: 'pixq_event', wake: 'pixq_wake', cancel: 'pixq_cancel' };

const RECONNECT_BASE_MS = 100;
const RECONNECT_MAX_MS = 5000;
/**
 * How far below the newest event id it has seen a catch-up reads: ids are taken before commit, so events of
 * transactions that were open together commit (and would have been notified) out of id order.
 */
const CATCH_UP_OVERLAP = 1000;
const CATCH_UP_PAGE = 1000;

/**
 * NOTIFY-based bus. Everything published goes through PostgreSQL, including to this process's own
 * listeners, so every process sees the same stream in the same order.
 *
 * The LISTEN connection can drop (a database restart, a failover, a network cut). The bus then reconnects
 * with backoff, and once listening again reads the events it missed from the events table, so subscribers
 * (SSE streams) lose nothing, and tells `onReconnect` listeners, so workers claim what became ready meanwhile
 * instead of waiting for their poll. Notifications missed meanwhile are otherwise only wake-ups and cancels,
 * which workers also learn of by polling.
 */
class PostgresEventBus extends LocalEventBus {
  private listener: { client: pg.PoolClient; drop(err?: Error): void } | undefined;
  private closed = false;
  private reconnecting = false;
  private readonly seen = new SeenIds();
  /** The newest event id when the bus started: a catch-up never replays what was there before. */
  private floor = 0;

  constructor(private readonly store: Store) {
    super();
  }

  async start() {
    this.floor = await selectLastEventId(this.store.db);
    await this.listen();
  }

  override publish(events: JobEvent[]) {
    if (events.length > 0)
      this.notify(
        CHANNEL.event,
        events.map((e) => JSON.stringify(e)),
      );
  }
  override wake(types: string[]) {
    // The local emit saves a round trip for the common case of a worker in the same process.
    super.wake(types);
    this.notify(CHANNEL.wake, [types.join(',')]);
  }
  override requestCancel(jobId: string) {
    this.notify(CHANNEL.cancel, [jobId]);
  }
  override onReconnect(listener: (info: { caughtUp: number }) => void) {
    this.emitter.on('reconnect', listener);
    return () => void this.emitter.off('reconnect', listener);
  }
  override async close() {
    this.closed = true;
    await super.close();
    this.listener?.drop();
  }

  /** Checks out a connection and LISTENs on it; when it fails later, the bus reconnects. */
  private async listen() {
    const client = await this.store.pool!.connect();
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      client.release(err ?? true); // never back into the pool: its session holds the LISTENs
      if (this.listener?.client !== client) return;
      this.listener = undefined;
      if (!this.closed) void this.reconnect();
    };
    client.on('notification', (msg) => this.dispatch(msg.channel, msg.payload ?? ''));
    client.on('error', drop);
    client.on('end', () => drop());
    try {
      for (const channel of Object.values(CHANNEL)) await client.query(`listen ${channel}`);
    } catch (err) {
      drop(err as Error);
      throw err;
    }
    this.listener = { client, drop };
  }

  private async reconnect() {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 1; !this.closed; attempt++) {
        await sleep(backoffDelay(attempt, RECONNECT_BASE_MS, RECONNECT_MAX_MS));
        if (this.closed) return;
        try {
          if (!this.listener) await this.listen();
          const caughtUp = await this.catchUp();
          this.emitter.emit('reconnect', { caughtUp });
          return;
        } catch {
          // Still unreachable: try again after a longer wait.
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** Delivers the stored events this bus has not seen (listening already, so nothing falls in between). */
  private async catchUp(): Promise<number> {
    let after = Math.max(this.floor, this.seen.newest - CATCH_UP_OVERLAP);
    let delivered = 0;
    for (;;) {
      const rows = await selectEventsAfter(this.store.db, { afterId: after, limit: CATCH_UP_PAGE });
      for (const row of rows) if (this.deliver(fromStoredEvent(row))) delivered++;
      if (rows.length < CATCH_UP_PAGE) return delivered;
      after = Number(rows[rows.length - 1].id);
    }
  }

  private deliver(event: JobEvent): boolean {
    if (!this.seen.add(event.id)) return false;
    this.emitter.emit('event', event);
    return true;
  }

  private notify(channel: string, payloads: string[]) {
    if (this.closed) return;
    this.store
      .pool!.query('select pg_notify($1, payload) from unnest($2::text[]) as payload', [channel, payloads])
      .catch(() => undefined); // a lost notification only delays delivery: workers poll, SSE reads the table
  }

  private dispatch(channel: string, payload: string) {
    if (channel === CHANNEL.event) this.deliver(JSON.parse(payload) as JobEvent);
    else if (channel === CHANNEL.wake) this.emitter.emit('wake', payload.split(','));
    else if (channel === CHANNEL.cancel) this.emitter.emit('cancel', payload);
  }
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export async function createPostgresEventBus(store: Store): Promise<EventBus> {
  const bus = new PostgresEventBus(store);
  await bus.start();
  return bus;
}
