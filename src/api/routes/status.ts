import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { verifyBlobUrl } from '../../blobs/index.js';
import { vendorOf } from '../auth.js';
import { problem, sendProblem } from '../problems.js';
import { vendorView } from '../views.js';
import type { ApiDeps } from '../deps.js';

const StatsQuery = Type.Object({ windowMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, default: 15 })) }, { additionalProperties: false });
const BlobParams = Type.Object({ key: Type.String({ maxLength: 80 }) });
const BlobQuery = Type.Record(Type.String(), Type.String());

/** Stats, the vendor's own limits and usage, health probes and signed downloads. */
export const statusRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const { engine } = deps;

  api.get('/v1/stats', {
    config: { access: 'any' },
    schema: { tags: ['stats'], summary: 'Job counts, wait/run percentiles, throughput (admin: all vendors)', querystring: StatsQuery },
  }, async (request) => {
    const windowMs = (request.query.windowMinutes ?? 15) * 60_000;
    const vendorId = request.caller.kind === 'vendor' ? request.caller.vendor.id : undefined;
    return engine.stats(windowMs, vendorId);
  });

  api.get('/v1/vendors/me', {
    config: { access: 'vendor' },
    schema: { tags: ['stats'], summary: 'Your limits and current usage' },
  }, async (request) => {
    const vendor = vendorOf(request);
    const stats = await engine.stats(15 * 60_000, vendor.id);
    const limits = { ...deps.config.rateLimits, ...(vendor.rateLimits ?? {}) } as Record<string, unknown>;
    delete limits.anonymous;
    return { vendor: vendorView(vendor), rateLimits: limits, usage: { jobs: stats.totals } };
  });

  api.get('/healthz', { config: { access: 'public' }, schema: { tags: ['health'], summary: 'The process is up' } }, async () => ({ status: 'ok' }));

  api.get('/readyz', { config: { access: 'public' }, schema: { tags: ['health'], summary: 'The store is reachable and migrated' } }, async (_request, reply) => {
    const ready = await engine.ready();
    if (!ready) return sendProblem(reply, problem(503, 'not_ready', 'the store is unreachable or not migrated'));
    return { status: 'ready' };
  });

  // The signature is the credential: whoever holds the URL may download, until it expires.
  api.get('/v1/blobs/:key', {
    config: { access: 'public' },
    schema: { tags: ['jobs'], summary: 'Download an output through its signed URL', params: BlobParams, querystring: BlobQuery },
  }, async (request, reply) => {
    const verified = verifyBlobUrl(request.params.key, request.query, deps.signer.secret);
    return reply
      .type(verified.contentType)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'private, max-age=300')
      .send(deps.blobs.stream(request.params.key));
  });
};
