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
 * In one process an EventEmitter carries them; job events cross processes on SQLite by a tail of the events
 * table, and all three on PostgreSQL by LISTEN/NOTIFY.
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

/** Ids above a floor, as sorted disjoint ranges: a process's own events are consecutive, so there are few. */
class IdRanges {
  private readonly ranges: [number, number][] = [];

  /** Adds `id`; false if it was there already. */
  add(id: number): boolean {
    const i = this.ranges.findIndex(([, end]) => end >= id - 1);
    const range = this.ranges[i];
    if (range && range[0] <= id && id <= range[1]) return false;
    if (range && id === range[1] + 1) {
      range[1] = id;
      const next = this.ranges[i + 1];
      if (next && next[0] === id + 1) range[1] = this.ranges.splice(i + 1, 1)[0][1];
    } else if (range && id === range[0] - 1) range[0] = id;
    else if (range) this.ranges.splice(i, 0, [id, id]);
    else this.ranges.push([id, id]);
    return true;
  }

  has(id: number): boolean {
    return this.ranges.some(([start, end]) => start <= id && id <= end);
  }

  /** Moves `floor` up through the ranges that continue it; returns the new floor. */
  raise(floor: number): number {
    while (this.ranges.length > 0 && this.ranges[0][0] <= floor + 1) floor = Math.max(floor, this.ranges.shift()![1]);
    return floor;
  }

  /** The lowest id held, if any. */
  first(): number | undefined {
    return this.ranges[0]?.[0];
  }
}

const TAIL_PAGE = 1000;
const MAX_TAIL_MS = 250;

/**
 * SQLite's bus: processes sharing the file share nothing else, so events cross them through the events table.
 * This process's own events are delivered at once when published (after their commit), as on the local bus; a
 * timer reads the events other processes stored, tailing the table by id. SQLite has one writer at a time, so ids
 * commit in order: every id up to `delivered` has been delivered, and the ranges above it that this process
 * published are skipped, so the tail reads only other processes' events, one `max(id)` probe when there are none.
 * Wake-ups and cancels stay in the process: workers elsewhere learn of them by polling.
 */
class SqliteEventBus extends LocalEventBus {
  private delivered = 0;
  private readonly published = new IdRanges();
  private timer: NodeJS.Timeout | undefined;
  private tailing = false;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly pollMs = MAX_TAIL_MS,
  ) {
    super();
  }

  async start() {
    this.delivered = await selectLastEventId(this.store.db);
    this.timer = setInterval(() => void this.tail(), Math.min(this.pollMs, MAX_TAIL_MS));
    this.timer.unref();
  }

  override publish(events: JobEvent[]) {
    for (const event of events) {
      if (event.id <= this.delivered || !this.published.add(event.id)) continue;
      this.emitter.emit('event', event);
    }
    this.delivered = this.published.raise(this.delivered);
  }

  override async close() {
    this.closed = true;
    clearInterval(this.timer);
    await super.close();
  }

  /** Delivers the events other processes stored since the last tail, in id order. */
  private async tail() {
    if (this.tailing || this.closed) return;
    this.tailing = true;
    try {
      const newest = await selectLastEventId(this.store.db);
      for (;;) {
        this.delivered = this.published.raise(this.delivered);
        if (this.closed || this.delivered >= newest) return;
        // The ids up to the next range this process published (or up to the newest) came from elsewhere.
        const upTo = Math.min(newest, (this.published.first() ?? Infinity) - 1);
        const rows = await selectEventsAfter(this.store.db, { afterId: this.delivered, upTo, limit: TAIL_PAGE });
        for (const row of rows) {
          const event = fromStoredEvent(row);
          if (event.id > this.delivered && !this.published.has(event.id)) this.emitter.emit('event', event);
        }
        this.delivered = Math.max(this.delivered, rows.length === TAIL_PAGE ? Number(rows.at(-1)!.id) : upTo);
      }
    } catch {
      // The file is busy or full: the next tail reads the same events again.
    } finally {
      this.tailing = false;
    }
  }
}

export async function createSqliteEventBus(store: Store, pollMs?: number): Promise<EventBus> {
  const bus = new SqliteEventBus(store, pollMs);
  await bus.start();
  return bus;
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
