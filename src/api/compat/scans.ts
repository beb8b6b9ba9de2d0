import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { Job, JobState } from '../../engine/index.js';
import { validationFailed } from '../../errors.js';
import { newId } from '../../ids.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { toJobSpec } from '../intake.js';
import { readMultipart } from '../multipart.js';
import { problemResponses } from '../schemas.js';

/**
 * The product-label scanner's old API, kept so its UI and uploader work unchanged: a scan is a
 * `label-analysis` job submitted through the same intake as `/v1/jobs`, found again by its scan id (the
 * job's idempotency key), and reported in BullMQ's words.
 */

const JOB_TYPE = 'label-analysis';
const idempotencyKey = (scanId: string) => `scan:${scanId}`;

const ScanSubmission = Type.Object(
  {
    imageUrl: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    scanId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' })),
    userId: Type.String({ minLength: 1, maxLength: 200 }),
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    marketplaces: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 40 }), { maxItems: 10 })),
    productName: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    // Set by the multipart path from the stored `image` file; not for JSON callers.
    uploadId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
type ScanSubmission = Static<typeof ScanSubmission>;

const ScanState = Type.Union([
  Type.Literal('waiting'),
  Type.Literal('active'),
  Type.Literal('completed'),
  Type.Literal('failed'),
]);

const ScanStatus = Type.Object({
  scanId: Type.String(),
  state: ScanState,
  progress: Type.Object({
    stage: Type.Union([Type.String(), Type.Null()]),
    percentage: Type.Number(),
    message: Type.Union([Type.String(), Type.Null()]),
  }),
  result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});

const QueueStats = Type.Object({
  waiting: Type.Integer(),
  active: Type.Integer(),
  completed: Type.Integer(),
  failed: Type.Integer(),
});

const SCAN_STATES: Record<JobState, Static<typeof ScanState>> = {
  queued: 'waiting',
  delayed: 'waiting',
  running: 'active',
  succeeded: 'completed',
  failed: 'failed',
  cancelled: 'failed',
};

const problems = problemResponses(400, 401, 404, 413, 429);

export const scanRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };

    api.post(
      '/api/scans',
      {
        config: { ...config, budgets: ['image'] },
        schema: {
          tags: ['compat'],
          summary: 'Scanner: queue a label scan (JSON with imageUrl, or multipart with an `image` file)',
          body: ScanSubmission,
          response: { 202: Type.Object({ scanId: Type.String(), status: Type.Literal('QUEUED') }), ...problems },
        },
        preValidation: async (request) => {
          if (!request.isMultipart()) return;
          const { fields, uploadIds } = await readMultipart(request, deps, 1);
          const marketplaces =
            typeof fields.marketplaces === 'string' ? parseList(fields.marketplaces) : fields.marketplaces;
          request.body = {
            ...fields,
            marketplaces,
            ...(uploadIds.length > 0 && { uploadId: uploadIds[0] }),
          } as ScanSubmission;
        },
      },
      async (request, reply) => {
        const vendor = vendorOf(request);
        const body = request.body;
        const scanId = body.scanId ?? newId();
        const spec = await toJobSpec(
          deps,
          vendor.id,
          {
            type: JOB_TYPE,
            input: scanInput(body),
            options: definedOnly({
              category: body.category,
              marketplaces: body.marketplaces,
              productName: body.productName,
            }),
            metadata: { scanId, userId: body.userId },
          },
          idempotencyKey(scanId),
        );
        await deps.engine.jobs.enqueue(vendor.id, [spec]);
        return reply.code(202).send({ scanId, status: 'QUEUED' as const });
      },
    );

    api.get(
      '/api/scans/:scanId/status',
      {
        config,
        schema: {
          tags: ['compat'],
          summary: "Scanner: a scan's state, progress and, when done, its result",
          params: Type.Object({ scanId: Type.String({ minLength: 1, maxLength: 100 }) }),
          response: { 200: ScanStatus, ...problems },
        },
      },
      async (request) =>
        scanStatus(
          request.params.scanId,
          await deps.engine.jobs.getByIdempotencyKey(vendorOf(request).id, idempotencyKey(request.params.scanId)),
        ),
    );

    api.get(
      '/api/queue/stats',
      {
        config,
        schema: {
          tags: ['compat'],
          summary: 'Scanner: your scans by state',
          response: { 200: QueueStats, ...problems },
        },
      },
      async (request) => {
        const stats = await deps.engine.stats(60_000, vendorOf(request).id);
        const counts = stats.byType[JOB_TYPE] ?? {};
        const total = { waiting: 0, active: 0, completed: 0, failed: 0 };
        for (const [state, n] of Object.entries(counts)) total[SCAN_STATES[state as JobState]] += n ?? 0;
        return total;
      },
    );
  };

function scanInput(body: ScanSubmission) {
  if (body.uploadId && body.imageUrl) throw validationFailed('send either imageUrl or an "image" file, not both');
  if (body.uploadId) return { uploadId: body.uploadId };
  if (body.imageUrl) return { url: body.imageUrl };
  throw validationFailed('a scan needs imageUrl (JSON) or an "image" file (multipart)');
}

function definedOnly(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

function parseList(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    throw validationFailed('field "marketplaces" must be a JSON array, e.g. ["amazon","ebay"]');
  }
}

function scanStatus(scanId: string, job: Job) {
  return {
    scanId,
    state: SCAN_STATES[job.state],
    progress: { stage: job.progress.stage, percentage: job.progress.percent, message: job.progress.message },
    ...(job.state === 'succeeded' && job.result && { result: job.result }),
    ...(job.error && job.state !== 'succeeded' && { error: { code: job.error.code, message: job.error.message } }),
  };
}
