import { EventEmitter } from 'node:events';
import type pg from 'pg';
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

/**
 * NOTIFY-based bus. Everything published goes through PostgreSQL, including to this process's own
 * listeners, so every process sees the same stream in the same order.
 */
class PostgresEventBus extends LocalEventBus {
  private listener: pg.PoolClient | undefined;
  private closed = false;

  constructor(private readonly pool: pg.Pool) {
    super();
  }

  async start() {
    this.listener = await this.pool.connect();
    this.listener.on('notification', (msg) => this.dispatch(msg.channel, msg.payload ?? ''));
    this.listener.on('error', () => undefined);
    for (const channel of Object.values(CHANNEL)) await this.listener.query(`listen ${channel}`);
  }

  override publish(events: JobEvent[]) {
    if (events.length > 0) this.notify(CHANNEL.event, events.map((e) => JSON.stringify(e)));
  }
  override wake(types: string[]) {
    // The local emit saves a round trip for the common case of a worker in the same process.
    super.wake(types);
    this.notify(CHANNEL.wake, [types.join(',')]);
  }
  override requestCancel(jobId: string) {
    this.notify(CHANNEL.cancel, [jobId]);
  }
  override async close() {
    this.closed = true;
    await super.close();
    this.listener?.release();
  }

  private notify(channel: string, payloads: string[]) {
    if (this.closed) return;
    this.pool
      .query('select pg_notify($1, payload) from unnest($2::text[]) as payload', [channel, payloads])
      .catch(() => undefined); // a lost notification only delays delivery: workers poll, SSE reads the table
  }

  private dispatch(channel: string, payload: string) {
    if (channel === CHANNEL.event) this.emitter.emit('event', JSON.parse(payload) as JobEvent);
    else if (channel === CHANNEL.wake) this.emitter.emit('wake', payload.split(','));
    else if (channel === CHANNEL.cancel) this.emitter.emit('cancel', payload);
  }
}

export async function createPostgresEventBus(pool: pg.Pool): Promise<EventBus> {
  const bus = new PostgresEventBus(pool);
  await bus.start();
  return bus;
}
