import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { SeenIds, type JobEvent } from '../../engine/index.js';
import { jobScope, vendorOf, type EventScope } from '../auth.js';
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
        const buffered: JobEvent[] = [];
        const resumeAfter = lastEventId(request.headers['last-event-id'] ?? request.query.lastEventId);
        const seen = new SeenIds();
        let live = false;
        // Counted from here on, with no await before the stream opens, so concurrent requests cannot pass the limit.
        open.add(vendorId ?? ADMIN_STREAMS, reply.raw);
        // Nothing is written once the stream has been ended (at shutdown) but has not closed yet.
        const write = (text: string) => reply.raw.writableEnded || reply.raw.write(text);
        const send = (e: JobEvent) => {
          if (e.id <= resumeAfter || !seen.add(e.id)) return;
          write(`id: ${e.id}\nevent: job\ndata: ${JSON.stringify(e)}\n\n`);
        };
        const unsubscribe = deps.engine.bus.onEvent((e) => matches(e) && (live ? send(e) : buffered.push(e)));
        let heartbeat: NodeJS.Timeout | undefined;
        let closed = false;
        // Cleanup is in place before the first await, so a client that leaves during the replay (or a failed
        // replay) cannot leave a bus listener or a heartbeat timer behind.
        reply.raw.on('close', () => {
          closed = true;
          clearInterval(heartbeat);
          unsubscribe();
        });
        openStream(reply);
        try {
          // In pages, so a client that missed more than one page still gets every event in order.
          for (let afterId = resumeAfter, page = REPLAY_LIMIT; afterId > 0 && page === REPLAY_LIMIT;) {
            const filter = { vendorId, afterId, jobId, batchId, limit: REPLAY_LIMIT };
            const missed = await deps.engine.jobs.eventsAfter(filter);
            missed.forEach(send);
            page = missed.length;
            afterId = missed.at(-1)?.id ?? afterId;
          }
        } catch (err) {
          // The 200 is already sent; ending the stream lets the client reconnect and resume from what it got.
          request.log.error({ err }, 'event replay failed');
          reply.raw.destroy();
          return;
        }
        if (closed) return;
        buffered.sort((a, b) => a.id - b.id).forEach(send);
        live = true;
        heartbeat = setInterval(() => write(': heartbeat\n\n'), deps.config.sseHeartbeatMs);
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
