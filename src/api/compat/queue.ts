import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { FINISHED_STATES, type Engine, type JobPage, type JobState } from '../../engine/index.js';
import { notFound, PixqError, validationFailed } from '../../errors.js';
import { newId } from '../../ids.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { readMultipart } from '../multipart.js';
import { Identifier, problemResponses } from '../schemas.js';
import { submitJobs } from '../submit.js';
import { outputUrl } from '../views.js';
import { compatMetadata, compatRoute, pixqModel } from './common.js';

/**
 * The FastAPI rembg queue (`/queue/*`, `/health`). One old job is one submission of one or many files: a pixq
 * batch whose id is the old `job_id`, one background-removal job per file. Its status and progress are read
 * from the batch's jobs.
 */
type OldStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'cancelled';
const OLD_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'] as const;
const Status = Type.Union(OLD_STATUSES.map((s) => Type.Literal(s)));
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const OldJob = Type.Object({
  id: Type.String(),
  status: Status,
  type: Type.Union([Type.Literal('single'), Type.Literal('batch')]),
  created_at: Type.String(),
  started_at: Nullable(Type.String()),
  completed_at: Nullable(Type.String()),
  progress: Type.Object({ total: Type.Integer(), processed: Type.Integer(), failed: Type.Integer() }),
  model: Type.String(),
  filenames: Type.Array(Type.String()),
  results: Type.Array(
    Type.Object({
      filename: Type.String(),
      status: Status,
      url: Nullable(Type.String()),
      error: Nullable(Type.String()),
    }),
  ),
  error: Nullable(Type.String()),
});
const Submitted = Type.Object({
  job_id: Type.String(),
  status: Type.Literal('queued'),
  job_type: Type.Union([Type.Literal('single'), Type.Literal('batch')]),
  files_count: Type.Integer(),
  model: Type.String(),
  message: Type.String(),
});
/** Counts only for a vendor (a key, or the keyless vendor): a keyless caller learns only whether workers run. */
const WorkerState = Type.Object({
  status: Type.Union([Type.Literal('running'), Type.Literal('stopped')]),
  active_jobs: Type.Optional(Type.Integer({ description: "the vendor's running jobs" })),
  max_concurrent: Type.Optional(Type.Integer({ description: "the workers' remove-background slots" })),
});
const Counts = Type.Object(Object.fromEntries([...OLD_STATUSES, 'total'].map((s) => [s, Type.Integer()])));
const JobParams = Type.Object({ job_id: Identifier });
const ListQuery = Type.Object(
  { status: Type.Optional(Status), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })) },
  { additionalProperties: false },
);

const STATUS_OF: Record<JobState, OldStatus> = {
  queued: 'pending',
  delayed: 'pending',
  running: 'processing',
  succeeded: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};
/** /queue/jobs looks at the vendor's newest jobs only, so one request stays bounded. */
const LIST_SCAN_JOBS = 1000;

export const queueRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['compat: queue'];
    const problems = problemResponses(400, 401, 403, 404, 413, 429);
    const { engine } = deps;

    api.post(
      '/queue/submit',
      {
        config: compatRoute('bulk'),
        schema: {
          tags,
          summary: 'Submit one or many files (multipart "images") as one job',
          querystring: Type.Object(
            { model: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: false },
          ),
          response: { 200: Submitted, ...problems, ...problemResponses(415, 422) },
        },
      },
      async (request, reply) => {
        if (!request.isMultipart())
          throw new PixqError(
            'unsupported_media_type',
            'send the images as multipart/form-data in the field "images"',
            { status: 415 },
          );
        const model = pixqModel(request.query.model);
        const { uploadIds, filenames } = await readMultipart(request, deps, deps.config.maxBulkFiles, 'images');
        if (uploadIds.length === 0) throw validationFailed('send at least one file in the multipart field "images"');
        const jobType = uploadIds.length > 1 ? ('batch' as const) : ('single' as const);
        const oldModel = request.query.model ?? model;
        const batchId = newId();
        await submitJobs(
          deps,
          request,
          reply,
          uploadIds.map((uploadId, index) => ({
            type: 'remove-background',
            input: { uploadId },
            options: { model },
            metadata: compatMetadata('queue', {
              filename: filenames[index],
              index,
              model: oldModel,
              job_type: jobType,
            }),
          })),
          { batchId },
        );
        return {
          job_id: batchId,
          status: 'queued' as const,
          job_type: jobType,
          files_count: uploadIds.length,
          model: oldModel,
          message: `job queued with ${uploadIds.length} file${uploadIds.length > 1 ? 's' : ''}`,
        };
      },
    );

    api.get(
      '/queue/job/:job_id',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'Status, progress and results of one job',
          params: JobParams,
          response: { 200: OldJob, ...problems },
        },
      },
      async (request) => {
        const vendorId = vendorOf(request).id;
        return oldJob(
          deps,
          request.params.job_id,
          await batchJobs(engine, vendorId, request.params.job_id, deps.config.maxBulkFiles),
        );
      },
    );

    api.get(
      '/queue/jobs',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: `Your jobs, newest first (among your newest ${LIST_SCAN_JOBS} files)`,
          querystring: ListQuery,
          response: { 200: Type.Object({ total: Type.Integer(), jobs: Type.Array(OldJob) }), ...problems },
        },
      },
      async (request) => {
        const vendorId = vendorOf(request).id;
        const batches = await recentQueueBatches(engine, vendorId);
        const all = [...batches].map(([id, jobs]) => oldJob(deps, id, jobs));
        const matching = all.filter((j) => !request.query.status || j.status === request.query.status);
        return { total: matching.length, jobs: matching.slice(0, request.query.limit ?? 50) };
      },
    );

    api.get(
      '/queue/stats',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'Counts of your files by status, and the workers',
          response: { 200: Type.Object({ stats: Counts, worker: WorkerState }), ...problems },
        },
      },
      async (request) => {
        const totals = (await engine.stats(15 * 60_000, vendorOf(request).id)).byType['remove-background'] ?? {};
        const stats = { pending: 0, processing: 0, completed: 0, failed: 0, cancelled: 0, total: 0 };
        for (const [state, n] of Object.entries(totals)) {
          stats[STATUS_OF[state as JobState]] += n ?? 0;
          stats.total += n ?? 0;
        }
        return { stats, worker: await workerState(engine, vendorOf(request).id) };
      },
    );

    api.post(
      '/queue/job/:job_id/cancel',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: 'Cancel a job (its files not yet done)',
          params: JobParams,
          response: {
            200: Type.Object({ job_id: Type.String(), status: Type.Literal('cancelled'), message: Type.String() }),
            ...problems,
            ...problemResponses(409),
          },
        },
      },
      async (request) => {
        const vendorId = vendorOf(request).id;
        const jobs = await batchJobs(engine, vendorId, request.params.job_id, deps.config.maxBulkFiles);
        const open = jobs.filter((j) => !FINISHED_STATES.includes(j.state));
        if (open.length === 0) throw new PixqError('invalid_state', 'the job is already finished', { status: 409 });
        for (const job of open) {
          // A file may finish between the read and the cancel; the others are still cancelled.
          await engine.jobs.cancel(job.id, vendorId).catch((err: unknown) => {
            if (!(err instanceof PixqError && err.code === 'invalid_state')) throw err;
          });
        }
        return {
          job_id: request.params.job_id,
          status: 'cancelled' as const,
          message: `cancelled ${open.length} of ${jobs.length} files`,
        };
      },
    );

    api.get(
      '/health',
      {
        // Keyless, it acts as PIXQ_COMPAT_ANONYMOUS_VENDOR when that is set, and then reports that vendor's jobs.
        config: { access: 'public', keylessVendor: true },
        schema: {
          tags,
          summary:
            "The service is up and whether workers run; with a key (or the keyless vendor), the vendor's running jobs",
          response: { 200: Type.Object({ status: Type.Literal('healthy'), worker: WorkerState }) },
        },
      },
      async (request) => ({
        status: 'healthy' as const,
        worker: await workerState(engine, request.caller.kind === 'vendor' ? request.caller.vendor.id : undefined),
      }),
    );
  };

/** The jobs of one old job (a batch), in submission order; 404 for a batch that is not the vendor's. */
/** A job as the list reads it: with its outputs, so no answer reads a job again. */
type ListedJob = JobPage['jobs'][number];

async function batchJobs(engine: Engine, vendorId: string, batchId: string, max: number): Promise<ListedJob[]> {
  const page = await engine.jobs.list(vendorId, { batchId }, max);
  if (page.jobs.length === 0) throw notFound('job');
  return page.jobs.sort((a, b) => Number(a.metadata?.index ?? 0) - Number(b.metadata?.index ?? 0));
}

async function recentQueueBatches(engine: Engine, vendorId: string): Promise<Map<string, ListedJob[]>> {
  const batches = new Map<string, ListedJob[]>();
  let cursor: string | undefined;
  for (let seen = 0; seen < LIST_SCAN_JOBS;) {
    const page = await engine.jobs.list(vendorId, { type: 'remove-background' }, 100, cursor);
    for (const job of page.jobs) {
      if (job.metadata?.via !== 'queue' || !job.batchId) continue;
      batches.set(job.batchId, [...(batches.get(job.batchId) ?? []), job]);
    }
    seen += page.jobs.length;
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  for (const jobs of batches.values())
    jobs.sort((a, b) => Number(a.metadata?.index ?? 0) - Number(b.metadata?.index ?? 0));
  return batches;
}

function oldJob(deps: ApiDeps, id: string, jobs: ListedJob[]) {
  const counts = Object.fromEntries(OLD_STATUSES.map((s) => [s, 0])) as Record<OldStatus, number>;
  for (const job of jobs) counts[STATUS_OF[job.state]]++;
  const finished = jobs.every((j) => FINISHED_STATES.includes(j.state));
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const results = jobs.map((job) => ({
    filename: String(job.metadata?.filename ?? ''),
    status: STATUS_OF[job.state],
    url: job.state === 'succeeded' && job.outputs[0] ? outputUrl(deps.signer, job.vendorId, job.outputs[0]) : null,
    error: job.error?.message ?? null,
  }));
  const started = jobs.map((j) => j.startedAt).filter((t): t is number => t !== null);
  return {
    id,
    status: oldStatus(counts, jobs.length, finished),
    type: jobs.length > 1 ? ('batch' as const) : ('single' as const),
    created_at: iso(Math.min(...jobs.map((j) => j.createdAt)))!,
    started_at: started.length > 0 ? iso(Math.min(...started)) : null,
    completed_at: finished ? iso(Math.max(...jobs.map((j) => j.finishedAt ?? 0))) : null,
    progress: {
      total: jobs.length,
      processed: counts.completed + counts.failed + counts.cancelled,
      failed: counts.failed,
    },
    model: String(jobs[0].metadata?.model ?? ''),
    filenames: results.map((r) => r.filename),
    results,
    error: jobs.find((j) => j.error)?.error?.message ?? null,
  };
}

/** Running while any file is; when all are done: completed if any file succeeded, else failed or cancelled. */
function oldStatus(counts: Record<OldStatus, number>, total: number, finished: boolean): OldStatus {
  if (!finished) return counts.pending === total ? 'pending' : 'processing';
  if (counts.completed > 0) return 'completed';
  return counts.failed > 0 ? 'failed' : 'cancelled';
}

/** Whether workers run; for a vendor also its running jobs (never another vendor's) and the removal slots. */
async function workerState(engine: Engine, vendorId: string | undefined): Promise<Static<typeof WorkerState>> {
  const workers = await engine.registry.workers();
  const status = workers.length > 0 ? ('running' as const) : ('stopped' as const);
  if (vendorId === undefined) return { status };
  return {
    status,
    active_jobs: await engine.jobs.count(vendorId, { state: 'running' }),
    max_concurrent: workers.reduce((sum, w) => sum + (w.slots['remove-background'] ?? 0), 0),
  };
}
