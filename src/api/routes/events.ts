import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { SeenIds, type JobEvent } from '../../engine/index.js';
import { jobScope, vendorOf, type EventScope } from '../auth.js';
import type { Config } from '../../config.js';
import type { ApiDeps } from '../deps.js';
import { eventTokenKey, signEventToken } from '../event-tokens.js';
import { EventsQuery, EventTokenRequest, EventTokenView, problemResponses } from '../schemas.js';
import { PixqError, validationFailed } from '../../errors.js';
import { OpenStreams } from '../open-streams.js';

const REPLAY_LIMIT = 1000;
// The admin key's streams are counted under this name (vendor ids are ULIDs, never this).
const ADMIN_STREAMS = 'admin';

/**
 * Server-Sent Events of the caller's own job updates (the admin key: every vendor's). A reconnecting client sends `Last-Event-ID` and gets
 * what it missed from the events table, then live events from the bus (NOTIFY-fed on PostgreSQL, so events
 * from every process arrive). A comment line every heartbeat keeps proxies from closing an idle stream.
 */
export const eventRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const tokenKey = eventTokenKey(deps.signer.secret);

    const open = new OpenStreams(deps.config.maxStreamsPerVendor);
    // Before the server stops accepting: a stream left open would keep close() waiting for its client.
    app.addHook('preClose', async () => open.endAll());
    api.post(
      '/v1/events/tokens',
      {
        config: { access: 'vendor' },
        schema: {
          tags: ['events'],
          summary: 'A short-lived read-only token for GET /v1/events?token= (browsers: EventSource sends no headers)',
          description:
            'Bound to your vendor and, if given, to one job or batch; lives ttlSeconds (at most 900). Nothing is stored: a token cannot be revoked, only outlived.',
          body: EventTokenRequest,
          response: { 201: EventTokenView, ...problemResponses(400, 401, 404) },
        },
      },
      async (request, reply) => {
        const vendor = vendorOf(request);
        const { jobId, batchId, ttlSeconds = 900 } = request.body;
        if (jobId && batchId) throw validationFailed('bind a token to a job or to a batch, not both');
        if (jobId) await deps.engine.jobs.get(jobId, vendor.id); // 404 for a job that is not the caller's
        if (batchId) await deps.engine.jobs.batch(batchId, vendor.id);
        const expiresAt = Date.now() + ttlSeconds * 1000;
        const token = signEventToken({ vendorId: vendor.id, jobId, batchId, expiresAt }, tokenKey);
        const expiresAtIso = new Date(Math.floor(expiresAt / 1000) * 1000).toISOString();
        return reply.code(201).send({ token, expiresAt: expiresAtIso, jobId: jobId ?? null, batchId: batchId ?? null });
      },
    );

    api.get(
      '/v1/events',
      {
        config: { access: 'any', eventTokens: true },
        schema: {
          tags: ['events'],
          summary:
            "Live job updates (text/event-stream); authenticate with a key, or with ?token= from POST /v1/events/tokens; the admin key follows every vendor's",
          querystring: EventsQuery,
        },
      },
      async (request, reply) => {
        // Undefined for the admin: every vendor's events.
        const vendorId = jobScope(request);
        const { jobId, batchId } = scoped(
          request.query,
          request.caller.kind === 'vendor' ? request.caller.eventScope : undefined,
        );
        if (jobId) await deps.engine.jobs.get(jobId, vendorId); // 404 for a job that is not the caller's
        if (batchId) await deps.engine.jobs.batch(batchId, vendorId);
        const matches = (e: JobEvent) =>
          (vendorId === undefined || e.vendorId === vendorId) &&
          (!jobId || e.jobId === jobId) &&
          (!batchId || e.batchId === batchId);

        // Subscribe before replaying so nothing falls between the two; the seen ids drop what replay sent. Live
        // events can arrive out of id order (concurrent commits on PostgreSQL), so repeats are found by id, not
        // by comparing with the highest id sent.
        const resumeAfter = lastEventId(request.headers['last-event-id'] ?? request.query.lastEventId);
        // Counted from here on, with no await before the stream opens, so concurrent requests cannot pass the limit.
        open.add(vendorId ?? ADMIN_STREAMS, reply.raw);
        const stream = new EventStream(reply.raw, resumeAfter, deps.config);
        const unsubscribe = deps.engine.bus.onEvent((e) => matches(e) && stream.offer(e));
        let heartbeat: NodeJS.Timeout | undefined;
        // Cleanup is in place before the first await, so a client that leaves during the replay (or a failed
        // replay) cannot leave a bus listener or a heartbeat timer behind.
        reply.raw.on('close', () => {
          clearInterval(heartbeat);
          unsubscribe();
        });
        openStream(reply);
        try {
          // In pages, so a client that missed more than one page still gets every event in order; each page is
          // read only once the client has taken the last one, and not at all once it has gone.
          for (let afterId = resumeAfter, page = REPLAY_LIMIT; afterId > 0 && page === REPLAY_LIMIT;) {
            const filter = { vendorId, afterId, jobId, batchId, limit: REPLAY_LIMIT };
            const missed = await deps.engine.jobs.eventsAfter(filter);
            if (!(await stream.replay(missed))) return;
            page = missed.length;
            afterId = missed.at(-1)?.id ?? afterId;
          }
        } catch (err) {
          // The 200 is already sent; ending the stream lets the client reconnect and resume from what it got.
          request.log.error({ err }, 'event replay failed');
          reply.raw.destroy();
          return;
        }
        if (!stream.goLive()) return;
        heartbeat = setInterval(() => stream.comment('heartbeat'), deps.config.sseHeartbeatMs);
      },
    );
  };

/** The filter a token allows: its own job or batch (asking for another is 403), or what was asked. */
function scoped(query: { jobId?: string; batchId?: string }, scope: EventScope | undefined) {
  if (!scope || (!scope.jobId && !scope.batchId)) return query;
  const outside =
    (scope.jobId && (query.batchId || (query.jobId && query.jobId !== scope.jobId))) ||
    (scope.batchId && (query.jobId || (query.batchId && query.batchId !== scope.batchId)));
  if (outside) throw new PixqError('forbidden', 'this event token is bound to another job or batch', { status: 403 });
  return { jobId: scope.jobId, batchId: scope.batchId };
}

/**
 * The id to resume after: event ids are positive integers, so anything else (an id too large for the store's
 * bigint, "1e400", "abc") is the client's mistake and gets a 400 rather than a stream that fails later.
 */
function lastEventId(header: string | string[] | undefined): number {
  if (header === undefined || header === '') return 0;
  if (typeof header !== 'string' || !/^\d{1,15}$/.test(header.trim())) {
    throw validationFailed('Last-Event-ID must be the id of an event this stream sent (a whole number)');
  }
  return Number(header.trim());
}

/** The final comment of a stream the client could not keep up with; it resumes where it got to. */
const TOO_FAR_BEHIND = ': too far behind; reconnect with Last-Event-ID\n\n';

/**
 * One client's event stream, honouring the socket's backpressure. The replay writes an event only once the
 * client has taken the previous ones ('drain'), and stops when it has gone. Live events cannot wait: they are
 * written at once, and a client that leaves more than `sseMaxUnsentBytes` unread (or lets as much pile up while
 * its replay runs) is ended with a comment; it reconnects with Last-Event-ID and replays what it missed at its
 * own pace. A client that never reads again is cut off after `bodyIdleTimeoutMs`.
 */
class EventStream {
  private readonly seen = new SeenIds();
  /** Live events that arrived during the replay, serialised, sent after it. */
  private buffered: { id: number; frame: string }[] | undefined = [];
  private bufferedBytes = 0;
  private gone = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly resumeAfter: number,
    private readonly limits: Pick<Config, 'sseMaxUnsentBytes' | 'bodyIdleTimeoutMs'>,
  ) {
    res.on('close', () => (this.gone = true));
  }

  /** Sends replayed events as the client takes them; false once the client has gone. */
  async replay(events: JobEvent[]): Promise<boolean> {
    for (const e of events) {
      if (this.gone || this.res.writableEnded) return false;
      this.send(e.id, frame(e));
      if (this.res.writableNeedDrain && !(await drained(this.res))) return false;
    }
    return !this.gone;
  }

  /** After the replay: sends what arrived meanwhile, in id order; false if the stream has ended. */
  goLive(): boolean {
    const buffered = this.buffered ?? [];
    this.buffered = undefined;
    for (const { id, frame } of buffered.sort((a, b) => a.id - b.id)) this.sendLive(id, frame);
    return !this.gone && !this.res.writableEnded;
  }

  /** A live event from the bus. */
  offer(e: JobEvent) {
    if (!this.buffered) return this.sendLive(e.id, frame(e));
    const text = frame(e);
    this.buffered.push({ id: e.id, frame: text });
    this.bufferedBytes += text.length;
    if (this.bufferedBytes > this.limits.sseMaxUnsentBytes) this.endBehind();
  }

  comment(text: string) {
    if (!this.res.writableEnded && !this.res.writableNeedDrain) this.res.write(`: ${text}\n\n`);
  }

  private sendLive(id: number, text: string) {
    this.send(id, text);
    if (this.res.writableLength > this.limits.sseMaxUnsentBytes) this.endBehind();
  }

  private send(id: number, text: string) {
    // Nothing is written once the stream has been ended (behind, or at shutdown) but has not closed yet.
    if (this.res.writableEnded || id <= this.resumeAfter || !this.seen.add(id)) return;
    this.res.write(text);
  }

  private endBehind() {
    if (this.res.writableEnded) return;
    this.buffered = undefined;
    this.res.end(TOO_FAR_BEHIND);
    const cutOff = setTimeout(() => this.res.destroy(), this.limits.bodyIdleTimeoutMs);
    cutOff.unref();
    this.res.on('close', () => clearTimeout(cutOff));
  }
}

function frame(e: JobEvent): string {
  return `id: ${e.id}\nevent: job\ndata: ${JSON.stringify(e)}\n\n`;
}

/** Resolves true when `res` can take more, false when it closed first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const settle = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => settle(true);
    const onClose = () => settle(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

function openStream(reply: FastifyReply) {
  reply.hijack();
  // Heartbeats keep the stream alive; the idle timeout is for connections that stall a request.
  reply.raw.socket?.setTimeout(0);
  const headers = { ...reply.getHeaders() } as Record<string, string>;
  reply.raw.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  reply.raw.write('retry: 3000\n\n');
}
