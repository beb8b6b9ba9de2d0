import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { JobEvent } from '../../engine/index.js';
import { selectEventsAfter } from '../../store/sql/events.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';

const EventsQuery = Type.Object(
  { jobId: Type.Optional(Type.String({ maxLength: 64 })), batchId: Type.Optional(Type.String({ maxLength: 64 })) },
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
    let lastSent = Number(request.headers['last-event-id']) || 0;
    let live = false;
    const send = (e: JobEvent) => {
      if (e.id <= lastSent) return;
      lastSent = e.id;
      reply.raw.write(`id: ${e.id}\nevent: job\ndata: ${JSON.stringify(e)}\n\n`);
    };
    const unsubscribe = deps.engine.bus.onEvent((e) => matches(e) && (live ? send(e) : buffered.push(e)));
    openStream(reply);
    if (lastSent > 0) {
      const missed = await selectEventsAfter(deps.engine.store.db, { vendorId: vendor.id, afterId: lastSent, jobId, batchId, limit: REPLAY_LIMIT });
      for (const row of missed) send({ ...(JSON.parse(row.payload) as Omit<JobEvent, 'id'>), id: Number(row.id) });
    }
    buffered.sort((a, b) => a.id - b.id).forEach(send);
    live = true;
    const heartbeat = setInterval(() => reply.raw.write(': heartbeat\n\n'), deps.config.sseHeartbeatMs);
    request.raw.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
  });
};

function openStream(reply: FastifyReply) {
  reply.hijack();
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
