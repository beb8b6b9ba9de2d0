import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { verifyBlobUrl } from '../../blobs/index.js';
import { jobScope, vendorOf } from '../auth.js';
import { problemResponses, StatsSeries, StatsSeriesQuery, WhoAmI } from '../schemas.js';
import { problem, sendProblem } from '../problems.js';
import { vendorView } from '../views.js';
import type { ApiDeps } from '../deps.js';

const StatsQuery = Type.Object(
  { windowMinutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 1440, default: 15 })) },
  { additionalProperties: false },
);
const BlobParams = Type.Object({ key: Type.String({ maxLength: 80 }) });
/**
 * A signed link's query, every field optional: a missing or malformed one is the signature check's 403 (which
 * spends the anonymous budget), not a schema's 400. Named fields, so the OpenAPI document lists real parameters.
 */
const BlobQuery = Type.Object({
  exp: Type.Optional(Type.String({ description: 'expiry, epoch seconds' })),
  ct: Type.Optional(Type.String({ description: 'content type the bytes are served with' })),
  vid: Type.Optional(Type.String({ description: 'vendor the link was made for' })),
  sig: Type.Optional(Type.String({ description: 'HMAC-SHA256 of the above, base64url' })),
});

/** Stats, the vendor's own limits and usage, health probes and signed downloads. */
export const statusRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const { engine } = deps;

    api.get(
      '/v1/stats',
      {
        config: { access: 'any' },
        schema: {
          tags: ['stats'],
          summary: 'Job counts, wait/run percentiles, throughput (admin: all vendors)',
          querystring: StatsQuery,
        },
      },
      async (request) => {
        const windowMs = (request.query.windowMinutes ?? 15) * 60_000;
        return engine.stats(windowMs, jobScope(request));
      },
    );

    api.get(
      '/v1/stats/series',
      {
        config: { access: 'any' },
        schema: {
          tags: ['stats'],
          summary: 'Per-minute finished and failed counts with wait/run percentiles, for charts (admin: all vendors)',
          description:
            'Counts are exact; percentiles come from the newest 50,000 jobs finished in the span (null for a minute without any).',
          querystring: StatsSeriesQuery,
          response: { 200: StatsSeries, ...problemResponses(400, 401) },
        },
      },
      async (request) => {
        const buckets = await engine.statsSeries(request.query.minutes ?? 60, jobScope(request));
        return { buckets: buckets.map((b) => ({ ...b, at: new Date(b.at).toISOString() })) };
      },
    );

    api.get(
      '/v1/whoami',
      {
        config: { access: 'any' },
        schema: {
          tags: ['stats'],
          summary: 'Whose key this is: a vendor (id and name) or the admin',
          response: { 200: WhoAmI, ...problemResponses(401) },
        },
      },
      async (request) => {
        if (request.caller.kind === 'admin') return { kind: 'admin' as const };
        const { id, name } = vendorOf(request);
        return { kind: 'vendor' as const, vendor: { id, name } };
      },
    );

    api.get(
      '/v1/vendors/me',
      {
        config: { access: 'vendor' },
        schema: { tags: ['stats'], summary: 'Your limits and current usage' },
      },
      async (request) => {
        const vendor = vendorOf(request);
        const stats = await engine.stats(15 * 60_000, vendor.id);
        const limits = { ...deps.config.rateLimits, ...(vendor.rateLimits ?? {}) } as Record<string, unknown>;
        delete limits.anonymous;
        const requestLimits = { maxBulkFiles: deps.config.maxBulkFiles, maxUploadBytes: deps.config.maxUploadBytes };
        // The row read at authentication may be a moment old; the storage count is read now.
        const { storageBytes, maxStorageBytes } = await engine.vendors.get(vendor.id);
        const storage = { usedBytes: storageBytes, maxBytes: maxStorageBytes ?? deps.config.maxStorageBytes ?? null };
        return {
          vendor: vendorView(vendor),
          rateLimits: limits,
          limits: requestLimits,
          usage: { jobs: stats.totals, storage },
        };
      },
    );

    // Probes need no caller and spend no budget: they must answer while the store does not.
    const probe = { access: 'public', probe: true } as const;
    api.get('/healthz', { config: probe, schema: { tags: ['health'], summary: 'The process is up' } }, async () => ({
      status: 'ok',
    }));

    api.get(
      '/readyz',
      { config: probe, schema: { tags: ['health'], summary: 'The store is reachable and migrated' } },
      async (_request, reply) => {
        const readiness = await engine.readiness();
        if (!readiness.ready)
          return sendProblem(reply, problem(503, 'not_ready', readiness.reason, { details: { retryAfterSeconds: 5 } }));
        return { status: 'ready' };
      },
    );

    // A valid signature is its own authorisation: behind a load balancer every client shares one address, so
    // metering valid downloads by address would let one busy client block everyone's. A bad one is metered.
    api.get(
      '/v1/blobs/:key',
      {
        config: { access: 'public', meterAnonymous: false },
        schema: {
          tags: ['jobs'],
          summary: 'Download an output through its signed URL',
          params: BlobParams,
          querystring: BlobQuery,
        },
      },
      async (request, reply) => {
        let verified;
        try {
          verified = verifyBlobUrl(request.params.key, request.query, deps.signer.secret);
        } catch (err) {
          await deps.limiter.chargeAnonymous(request, reply);
          throw err;
        }
        if (verified.thumbnail !== undefined && verified.vendorId !== undefined) {
          const { key, vendorId, contentType } = verified;
          const answer = await deps.delivery.thumbnail({ blob: key, vendorId, contentType }, verified.thumbnail, {
            accept: request.headers.accept,
            ifNoneMatch: request.headers['if-none-match'],
          });
          return reply.code(answer.status).headers(answer.headers).send(answer.body);
        }
        // A bucket clients can reach serves the bytes itself, through a presigned GET that ends with this link.
        const direct = await deps.blobs.directUrl(verified.key, verified.contentType, verified.expiresAt);
        if (direct) return reply.header('cache-control', 'private, no-store').redirect(direct, 302);
        return reply
          .type(verified.contentType)
          .header('x-content-type-options', 'nosniff')
          .header('cache-control', 'private, max-age=300')
          .send(deps.blobs.stream(request.params.key));
      },
    );
  };
