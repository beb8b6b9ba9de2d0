import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { JobEvent } from '../../engine/index.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { OpenStreams } from '../open-streams.js';
import { Identifier } from '../schemas.js';
import { validationFailed } from '../../errors.js';

const EventsQuery = Type.Object(
  { jobId: Type.Optional(Identifier), batchId: Type.Optional(Identifier) },
  { additionalProperties: false },
);
const REPLAY_LIMIT = 1000;

/**
 * Server-Sent Events of the caller's own job updates. A reconnecting client sends `Last-Event-ID` and gets
 * what it missed from the events table, then live events from the bus (NOTIFY-fed on PostgreSQL, so events
 * from every process arrive). A comment line every heartbeat keeps proxies from closing an idle stream.
 */
export const eventRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const open = new OpenStreams(deps.config.maxStreamsPerVendor);
  // Before the server stops accepting: a stream left open would keep close() waiting for its client.
  app.addHook('preClose', async () => open.endAll());
  api.get('/v1/events', {
    config: { access: 'vendor' },
    schema: { tags: ['events'], summary: 'Live job updates (text/event-stream)', querystring: EventsQuery },
  }, async (request, reply) => {
    const vendor = vendorOf(request);
    const { jobId, batchId } = request.query;
    if (jobId) await deps.engine.jobs.get(jobId, vendor.id); // 404 for a job that is not the caller's
    if (batchId) await deps.engine.jobs.batch(batchId, vendor.id);
    const matches = (e: JobEvent) =>
      e.vendorId === vendor.id && (!jobId || e.jobId === jobId) && (!batchId || e.batchId === batchId);

    // Subscribe before replaying so nothing falls between the two; the id filter drops what replay sent.
    const buffered: JobEvent[] = [];
    let lastSent = lastEventId(request.headers['last-event-id']);
    let live = false;
    // Counted from here on, with no await before the stream opens, so concurrent requests cannot pass the limit.
    open.add(vendor.id, reply.raw);
    // Nothing is written once the stream has been ended (at shutdown) but has not closed yet.
    const write = (text: string) => reply.raw.writableEnded || reply.raw.write(text);
    const send = (e: JobEvent) => {
      if (e.id <= lastSent) return;
      lastSent = e.id;
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
      for (let page = REPLAY_LIMIT; lastSent > 0 && page === REPLAY_LIMIT; ) {
        const filter = { vendorId: vendor.id, afterId: lastSent, jobId, batchId, limit: REPLAY_LIMIT };
        const missed = await deps.engine.jobs.eventsAfter(filter);
        missed.forEach(send);
        page = missed.length;
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
  });
};

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
