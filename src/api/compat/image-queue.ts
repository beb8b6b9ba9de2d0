import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import type { Engine, Job, JobOutput, JobState } from '../../engine/index.js';
import { newId } from '../../ids.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { validationFailed } from '../../errors.js';
import { IdParams, problemResponses, type JobSubmission } from '../schemas.js';
import { submitJobs } from '../submit.js';
import { isAssetPath } from '@pixq/client/schemas';
import { jobAssetRefs } from '../asset-links.js';
import { outputUrl } from '../views.js';
import { callerFields, checkVendorClaim, compatMetadata, compatRoute, pixqModel } from './common.js';

/**
 * The marketplace backend's Express + Bull API (`/api/image-queue/*`, `/api/worker/health`), answered by
 * pixq's engine: each queued photo is a pixq job of the vendor's key; Bull's states and 0..100 progress are
 * read from it. `recordId`, `projectId` and any other body field are kept as the job's metadata.
 */
const Photo = Type.Object(
  {
    photoUrl: Type.String({ minLength: 1, maxLength: 2048 }),
    vendorId: Type.Optional(Type.Union([Type.String(), Type.Integer()])),
  },
  { additionalProperties: true },
);
const RecordId = Type.Union([Type.String(), Type.Integer()]);
/**
 * A bulk in either of the shapes the marketplace's clients send: `photos: [{recordId, photoUrl, ...}]`, or the
 * old client's function arguments as parallel arrays `recordIds` and `photoUrls` (with `projectId`, `vendorId`).
 */
const Bulk = Type.Object(
  {
    photos: Type.Optional(Type.Array(Photo, { minItems: 1 })),
    recordIds: Type.Optional(Type.Array(RecordId, { minItems: 1 })),
    photoUrls: Type.Optional(Type.Array(Photo.properties.photoUrl, { minItems: 1 })),
    vendorId: Type.Optional(Type.Union([Type.String(), Type.Integer()])),
  },
  { additionalProperties: true },
);
type Bulk = Static<typeof Bulk>;
const FreeObject = Type.Record(Type.String(), Type.Unknown());
const Queued = Type.Object({
  jobId: Type.String(),
  status: Type.Literal('waiting'),
  estimatedTime: Type.Integer({ description: 'seconds' }),
});
const BulkQueued = Type.Object({
  jobIds: Type.Array(Type.String()),
  count: Type.Integer(),
  estimatedTime: Type.Integer({ description: 'seconds' }),
});
const BullState = Type.Union(['waiting', 'active', 'completed', 'failed', 'delayed'].map((s) => Type.Literal(s)));
const BullJob = Type.Object({
  id: Type.String(),
  state: BullState,
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  result: Type.Union([
    Type.Object({
      outputUrl: Type.String(),
      contentType: Type.String(),
      width: Type.Integer(),
      height: Type.Integer(),
      details: Type.Union([FreeObject, Type.Null()]),
    }),
    Type.Null(),
  ]),
  failedReason: Type.Union([Type.String(), Type.Null()]),
  data: FreeObject,
});
const BullCounts = Type.Object({
  waiting: Type.Integer(),
  active: Type.Integer(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  delayed: Type.Integer(),
});
const Health = Type.Object({
  status: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy')]),
  workers: Type.Integer(),
  activeJobs: Type.Integer(),
  timestamp: Type.String(),
});

const QUEUES = { 'remove-bg': 'remove-background', 'crop-face': 'face-crop' } as const;
const BULL_STATES: Record<JobState, 'waiting' | 'active' | 'completed' | 'failed' | 'delayed'> = {
  queued: 'waiting',
  delayed: 'delayed',
  running: 'active',
  succeeded: 'completed',
  failed: 'failed',
  cancelled: 'failed',
};
/**
 * Where the marketplace's photos are published: `<projectId>/<recordId>`, the product row they belong to, when
 * both are given and make a valid asset path; else the job id.
 */
function compatPublishTarget(fields: Record<string, unknown>): JobSubmission['publish'] {
  const { projectId, recordId } = fields;
  const path = `${String(projectId)}/${String(recordId)}`;
  const named = projectId !== undefined && recordId !== undefined && isAssetPath(path);
  return named ? { path } : true;
}

/** Seconds one job is expected to take when the vendor has no recent runs to measure. */
const DEFAULT_JOB_SECONDS = 5;

export const imageQueueRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['compat: image-queue'];
    const problems = problemResponses(400, 401, 403, 404, 429);

    const submission = (
      queue: keyof typeof QUEUES,
      photo: Record<string, unknown>,
      shared: Record<string, unknown> = {},
    ): JobSubmission => {
      const { photoUrl, vendorId: _claim, ...fields } = { ...shared, ...photo };
      const type = QUEUES[queue];
      return {
        type,
        input: { url: String(photoUrl) },
        options: type === 'remove-background' ? { model: pixqModel(undefined) } : {},
        metadata: compatMetadata('image-queue', { ...fields, photoUrl }),
        ...(deps.config.compatPublish && { publish: compatPublishTarget(fields) }),
      };
    };

    for (const queue of Object.keys(QUEUES) as (keyof typeof QUEUES)[]) {
      api.post(
        `/image-queue/${queue}-queue`,
        {
          config: compatRoute('image'),
          schema: {
            tags,
            summary: `Queue one photo (${QUEUES[queue]}); Bull-style answer`,
            body: Photo,
            response: { 200: Queued, ...problems },
          },
        },
        async (request, reply) => {
          const vendor = vendorOf(request);
          checkVendorClaim(vendor, request.body.vendorId);
          const [job] = await submitJobs(deps, request, reply, [submission(queue, request.body)]);
          return {
            jobId: job.id,
            status: 'waiting' as const,
            estimatedTime: await estimateSeconds(deps.engine, vendor.id, 1),
          };
        },
      );

      const bulkName = queue === 'remove-bg' ? 'bulk-remove-bg' : 'bulk-crop-face';
      api.post(
        `/image-queue/${bulkName}`,
        {
          config: compatRoute('bulk'),
          schema: {
            tags,
            summary: `Queue many photos (${QUEUES[queue]}) in one transaction`,
            body: Bulk,
            response: { 200: BulkQueued, ...problems },
          },
        },
        async (request, reply) => {
          const vendor = vendorOf(request);
          const { photos, shared } = bulkPhotos(request.body);
          checkVendorClaim(vendor, shared.vendorId);
          for (const photo of photos) checkVendorClaim(vendor, photo.vendorId);
          const jobs = await submitJobs(
            deps,
            request,
            reply,
            photos.map((p) => submission(queue, p, shared)),
            { batchId: newId() },
          );
          return {
            jobIds: jobs.map((j) => j.id),
            count: jobs.length,
            estimatedTime: await estimateSeconds(deps.engine, vendor.id, jobs.length),
          };
        },
      );
    }

    api.get(
      '/image-queue/job/:id',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'A job in Bull’s shape: state, progress 0..100, result',
          params: IdParams,
          response: { 200: BullJob, ...problems },
        },
      },
      async (request) => {
        const job = await deps.engine.jobs.get(request.params.id, vendorOf(request).id);
        const output = job.outputs[0];
        // A published output's permanent URL, else (PIXQ_COMPAT_PUBLISH=0) the short-lived signed link.
        const published = output && (await jobAssetRefs(deps, request, [job]))(job, output);
        return bullJob(job, output && (published?.url ?? outputUrl(deps.signer, job.vendorId, output)), output);
      },
    );

    api.get(
      '/image-queue/queue-stats',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'Bull job counts per queue, for your jobs',
          response: { 200: Type.Object({ 'remove-bg': BullCounts, 'crop-face': BullCounts }), ...problems },
        },
      },
      async (request) => {
        const stats = await deps.engine.stats(15 * 60_000, vendorOf(request).id);
        const counts = (type: string) => {
          const byState = stats.byType[type] ?? {};
          const out = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0 };
          for (const [state, n] of Object.entries(byState)) out[BULL_STATES[state as JobState]] += n ?? 0;
          return out;
        };
        return { 'remove-bg': counts(QUEUES['remove-bg']), 'crop-face': counts(QUEUES['crop-face']) };
      },
    );

    api.get(
      '/worker/health',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'Whether workers are alive, and how many of your jobs they run',
          response: { 200: Health, ...problems },
        },
      },
      async (request) => {
        const workers = await deps.engine.registry.workers();
        return {
          status: workers.length > 0 ? ('healthy' as const) : ('unhealthy' as const),
          workers: workers.length,
          // The caller's own jobs: other vendors' load is theirs to know.
          activeJobs: await deps.engine.jobs.count(vendorOf(request).id, { state: 'running' }),
          timestamp: new Date().toISOString(),
        };
      },
    );
  };

/** The photos of a bulk in either shape, and the fields they share (`projectId`, `vendorId`, ...). */
function bulkPhotos(body: Bulk): { photos: Static<typeof Photo>[]; shared: Record<string, unknown> } {
  const { photos, recordIds, photoUrls, ...shared } = body;
  if (photos && (recordIds || photoUrls)) {
    throw validationFailed('send the photos either as "photos" or as "recordIds" with "photoUrls", not both');
  }
  if (photos) return { photos, shared };
  if (!recordIds || !photoUrls || recordIds.length !== photoUrls.length) {
    throw validationFailed('send "photos", or "recordIds" and "photoUrls" of the same length');
  }
  return { photos: photoUrls.map((photoUrl, i) => ({ recordId: recordIds[i], photoUrl })), shared };
}

function bullJob(job: Job, url: string | undefined, output: JobOutput | undefined) {
  return {
    id: job.id,
    state: BULL_STATES[job.state],
    progress: Math.round(job.state === 'succeeded' ? 100 : job.progress.percent),
    result:
      job.state === 'succeeded' && url && output
        ? {
            outputUrl: url,
            contentType: output.contentType,
            width: output.width,
            height: output.height,
            details: job.result,
          }
        : null,
    failedReason: job.error?.message ?? (job.state === 'cancelled' ? 'cancelled' : null),
    data: callerFields(job),
  };
}

/** Seconds until `count` more jobs are done: the vendor's recent median run time each, or a default. */
async function estimateSeconds(engine: Engine, vendorId: string, count: number): Promise<number> {
  const median = (await engine.stats(15 * 60_000, vendorId)).window.runMs.p50;
  return Math.ceil((count * (median ?? DEFAULT_JOB_SECONDS * 1000)) / 1000);
}
