import { PixqApiError } from './errors.js';
import type { EventsFilter, JobEvent } from './schemas.js';
import { readSse, type SseMessage } from './sse.js';

/** How a follow loop reaches the event stream; `open` yields messages until the stream ends or fails. */
export interface EventTransport {
  open(filter: EventsFilter, lastEventId: number, signal: AbortSignal, onOpen: () => void): AsyncIterable<SseMessage>;
}

/**
 * The stream was answered, but not as an event stream (a proxy's page, a firewall's 403, a buffering proxy
 * that never forwards a byte): retrying the stream will not help, polling might.
 */
export class StreamRefused extends Error {}

export interface FollowHandlers {
  /** A connection is open and nothing has been seen yet: read the current state (true when already done). */
  check(): Promise<boolean>;
  /** An event arrived (true when it finishes the follow). */
  onEvent(event: JobEvent): Promise<boolean> | boolean;
  /** One polling step when the stream is refused (true when done). */
  poll(): Promise<boolean>;
}

export interface FollowOptions {
  signal: AbortSignal;
  lastEventId?: number;
  pollIntervalMs: number;
  /** Refusals in a row after which the follow gives up on the stream and polls. */
  refusalsBeforePolling?: number;
}

/**
 * Follows events until a handler says done: reconnects with the last event id after any break (so a server
 * restart loses nothing), and falls back to polling when the stream keeps being refused.
 */
export async function follow(
  transport: EventTransport,
  filter: EventsFilter,
  handlers: FollowHandlers,
  opts: FollowOptions,
) {
  const { signal } = opts;
  let lastEventId = opts.lastEventId ?? 0;
  let refusals = 0;
  let breaks = 0;
  while (refusals < (opts.refusalsBeforePolling ?? 2)) {
    signal.throwIfAborted();
    // One connection; ended early when the read at open already shows the end.
    const connection = linked(signal);
    const connectionSignal = connection.signal;
    let opened = false;
    let checked: { done: boolean; error?: unknown } | undefined;
    const onOpen = () => {
      opened = true;
      if (lastEventId > 0) return; // the replay after that id is authoritative
      // Subscribed first, read second: whatever changes after the read arrives as an event.
      handlers.check().then(
        (done) => {
          checked = { done };
          if (done) connection.abort();
        },
        (error: unknown) => {
          checked = { done: false, error };
          connection.abort();
        },
      );
    };
    try {
      for await (const message of transport.open(filter, lastEventId, connectionSignal, onOpen)) {
        if (message.event !== 'job') continue;
        const event = JSON.parse(message.data) as JobEvent;
        lastEventId = Math.max(lastEventId, event.id);
        breaks = 0;
        if (await handlers.onEvent(event)) return;
      }
    } catch (err) {
      signal.throwIfAborted();
      if (checked?.error !== undefined) throw checked.error;
      if (checked?.done) return;
      if (err instanceof StreamRefused) {
        refusals++;
      } else if (err instanceof PixqApiError && err.problem && err.status < 500 && err.status !== 429) {
        throw err; // the API itself refused: a job that is not ours, a bad filter
      }
    } finally {
      connection.abort();
    }
    if (checked?.done) return;
    if (opened) refusals = 0;
    breaks = opened ? 1 : breaks + 1;
    await delay(Math.min(250 * 2 ** Math.min(breaks, 5), 5000), signal);
  }
  while (!(await handlers.poll())) await delay(opts.pollIntervalMs, signal);
}

/**
 * A controller that also aborts when `parent` does. Written out rather than AbortSignal.any, whose
 * combined signals Node may collect while a fetch still listens to them (and then never abort).
 */
export function linked(parent: AbortSignal | undefined): AbortController {
  const controller = new AbortController();
  if (parent?.aborted) controller.abort(parent.reason);
  const abort = () => controller.abort(parent!.reason);
  parent?.addEventListener('abort', abort, { once: true });
  controller.signal.addEventListener('abort', () => parent?.removeEventListener('abort', abort), { once: true });
  return controller;
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** The stream over fetch, with the key in a header: Node, and browsers when asked. */
export function fetchTransport(
  request: (path: string, init: RequestInit) => Promise<Response>,
  stallMs: number,
): EventTransport {
  return {
    async *open(filter, lastEventId, signal, onOpen) {
      const local = new AbortController();
      const abort = () => local.abort(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      let stall: ReturnType<typeof setTimeout> | undefined;
      let stalled = false;
      const alive = () => {
        clearTimeout(stall);
        stall = setTimeout(() => {
          stalled = true;
          local.abort();
        }, stallMs);
      };
      try {
        alive();
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        if (lastEventId > 0) headers['last-event-id'] = String(lastEventId);
        const res = await request(`/v1/events${query(filter)}`, { headers, signal: local.signal }).catch(
          (err: unknown) => {
            // An answer that is not the API's own problem+json came from something in the way.
            throw err instanceof PixqApiError && !err.problem ? new StreamRefused(err.message) : err;
          },
        );
        if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream') || !res.body) {
          await res.body?.cancel();
          throw new StreamRefused(`the events answer is ${res.headers.get('content-type')}, not an event stream`);
        }
        onOpen();
        yield* readSse(res.body, alive);
      } catch (err) {
        if (stalled) throw new StreamRefused(`no byte on the event stream for ${stallMs} ms`);
        throw err;
      } finally {
        clearTimeout(stall);
        signal.removeEventListener('abort', abort);
        local.abort();
      }
    },
  };
}

/**
 * The stream over the browser's EventSource, which cannot send headers: each connection carries a fresh
 * event token (`?token=`) bound to the filter, and a reopened one says where to resume (`?lastEventId=`).
 */
export function eventSourceTransport(
  baseUrl: string,
  token: (filter: EventsFilter) => Promise<string>,
): EventTransport {
  return {
    async *open(filter, lastEventId, signal, onOpen) {
      const params: Record<string, string> = { token: await token(filter) };
      if (lastEventId > 0) params.lastEventId = String(lastEventId);
      const source = new EventSource(`${baseUrl}/v1/events${query({ ...filter, ...params })}`);
      const queue: SseMessage[] = [];
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      const notify = () => wake?.();
      source.onopen = () => {
        onOpen();
        notify();
      };
      source.addEventListener('job', (e) => {
        queue.push({ event: 'job', data: (e as MessageEvent<string>).data, id: (e as MessageEvent).lastEventId });
        notify();
      });
      // EventSource reconnects by itself after a dropped connection (with Last-Event-ID); it closes for good
      // on an answer that is not a 200 event stream: an expired token, or something in the way.
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED) failure = new StreamRefused('the event stream was refused');
        notify();
      };
      signal.addEventListener('abort', notify, { once: true });
      try {
        for (;;) {
          while (queue.length > 0) yield queue.shift()!;
          signal.throwIfAborted();
          if (failure) throw failure;
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        signal.removeEventListener('abort', notify);
        source.close();
      }
    },
  };
}

/** A query string; an array value repeats its parameter (`metadata=a=1&metadata=b=2`). */
export function query(params: Record<string, string | number | readonly string[] | undefined>): string {
  const pairs = Object.entries(params).flatMap(([k, v]) =>
    v === undefined ? [] : [v].flat().map((item) => [k, String(item)]),
  );
  return pairs.length ? `?${new URLSearchParams(pairs).toString()}` : '';
}
