import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { MAX_BULK_ACTION } from '@pixq/client/schemas';
import { sniffImage } from '../../intake/index.js';
import type { BulkAction, JobFilter as Filter } from '../../engine/index.js';
import { PixqError } from '../../errors.js';
import { jobScope } from '../auth.js';
import { chargeRetries } from '../intake.js';
import type { Budget } from '../rate-limit.js';
import { readMultipart } from '../multipart.js';
import { submitJobs } from '../submit.js';
import {
  BulkActionResult,
  IdParams,
  JobCount,
  JobEventList,
  JobEventsQuery,
  JobFilter,
  JobList,
  JobListQuery,
  JobSubmission,
  JobView,
  problemResponses,
} from '../schemas.js';
import { jobView } from '../views.js';
import { jobAssetRefs } from '../asset-links.js';
import type { ApiDeps } from '../deps.js';

const problems = problemResponses(400, 401, 404, 429);
const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

/**
 * Submitting, reading, listing, cancelling and retrying jobs: a vendor's key its own, the admin key any
 * vendor's (see `jobScope`). Only a vendor submits.
 */
export const jobRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'any' as const };
    // A retry queues a job again: it spends what submitting that job spends.
    const submission = { access: 'vendor' as const, budgets: ['image'] as Budget[] };
    const retry = { ...config, budgets: ['image'] as Budget[] };

    api.post(
      '/v1/jobs',
      {
        config: submission,
        schema: {
          tags: ['jobs'],
          summary: 'Submit a job (JSON with input.url or input.uploadId, or multipart with an `image` file)',
          headers: IdempotencyHeaders,
          body: JobSubmission,
          response: { 202: JobView, ...problems },
        },
        preValidation: async (request) => {
          if (!request.isMultipart()) return;
          const { fields, uploadIds } = await readMultipart(request, deps, 1);
          // Validation of the body schema runs next, on what the multipart fields said.
          request.body = {
            ...fields,
            ...(uploadIds.length > 0 && { input: { uploadId: uploadIds[0] } }),
          } as JobSubmission;
        },
      },
      async (request, reply) => {
        const jobs = await submitJobs(deps, request, reply, [request.body], {
          idempotencyKey: request.headers['idempotency-key'],
        });
        return reply.code(202).header('location', `/v1/jobs/${jobs[0].id}`).send(jobView(jobs[0], deps.signer));
      },
    );

    api.get(
      '/v1/jobs',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary:
            "List jobs matching a filter, newest first (admin key: every vendor's, or one vendor's with vendorId)",
          querystring: JobListQuery,
          response: { 200: JobList, ...problems, ...problemResponses(403) },
        },
      },
      async (request) => {
        const { cursor, limit = 20, ...filter } = request.query;
        const page = await deps.engine.jobs.list(jobScope(request, filter.vendorId), filterOf(filter), limit, cursor);
        const assets = await jobAssetRefs(deps, request, page.jobs);
        return { jobs: page.jobs.map((j) => jobView(j, deps.signer, assets)), nextCursor: page.nextCursor };
      },
    );

    api.get(
      '/v1/jobs/count',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary: "How many jobs match a filter (the list's)",
          querystring: JobFilter,
          response: { 200: JobCount, ...problems, ...problemResponses(403) },
        },
      },
      async (request) => ({
        count: await deps.engine.jobs.count(jobScope(request, request.query.vendorId), filterOf(request.query)),
      }),
    );

    const bulk = (action: BulkAction, summary: string) => ({
      config: action === 'retry' ? { ...config, budgets: ['bulk'] as Budget[] } : config,
      schema: {
        tags: ['jobs'],
        summary,
        description:
          action === 'retry'
            ? `At most ${deps.config.maxBulkFiles} jobs per call (PIXQ_MAX_BULK_FILES, as a bulk submission), newest first; \`more\` says whether matching jobs remain. Spends one \`bulk\` unit and, as submitting the jobs would, one \`image\` unit per job and their background removals. Each job changes as its single retry would (events, webhooks, backlog quota).`
            : `At most ${MAX_BULK_ACTION} jobs per call, newest first; \`more\` says whether matching jobs remain. Each job changes as its single cancel would (events, webhooks), a chunk of jobs per transaction.`,
        body: JobFilter,
        response: { 200: BulkActionResult, ...problems, ...problemResponses(403) },
      },
    });

    api.post(
      '/v1/jobs/cancel',
      bulk('cancel', 'Cancel the queued, delayed and running jobs matching a filter'),
      async (request) => {
        const scope = jobScope(request, request.body.vendorId);
        const { jobs, more } = await deps.engine.jobs.actionable(
          'cancel',
          scope,
          filterOf(request.body),
          MAX_BULK_ACTION,
        );
        const changed = await deps.engine.jobs.actOnAll(
          'cancel',
          jobs.map((j) => j.id),
          scope,
        );
        return { matched: jobs.length, changed, more };
      },
    );

    api.post(
      '/v1/jobs/retry',
      bulk('retry', 'Queue again the failed and cancelled jobs matching a filter'),
      async (request, reply) => {
        const scope = jobScope(request, request.body.vendorId);
        // Queueing jobs again is a bulk submission of them: as many per call.
        const { jobs, more } = await deps.engine.jobs.actionable(
          'retry',
          scope,
          filterOf(request.body),
          deps.config.maxBulkFiles,
        );
        await chargeRetries(deps, request, reply, jobs, 'bulk');
        const changed = await deps.engine.jobs.actOnAll(
          'retry',
          jobs.map((j) => j.id),
          scope,
        );
        return { matched: jobs.length, changed, more };
      },
    );

    api.get(
      '/v1/jobs/:id',
      {
        config,
        schema: { tags: ['jobs'], summary: 'Get a job', params: IdParams, response: { 200: JobView, ...problems } },
      },
      async (request) => {
        const job = await deps.engine.jobs.get(request.params.id, jobScope(request));
        return jobView(job, deps.signer, await jobAssetRefs(deps, request, [job]));
      },
    );

    api.post(
      '/v1/jobs/:id/cancel',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary: 'Cancel a job',
          params: IdParams,
          response: { 200: JobView, ...problems, ...problemResponses(409) },
        },
      },
      async (request) => jobView(await deps.engine.jobs.cancel(request.params.id, jobScope(request)), deps.signer),
    );

    api.post(
      '/v1/jobs/:id/retry',
      {
        config: retry,
        schema: {
          tags: ['jobs'],
          summary: 'Queue a failed or cancelled job again',
          params: IdParams,
          response: { 200: JobView, ...problems, ...problemResponses(403, 409) },
        },
      },
      async (request, reply) => {
        const scope = jobScope(request);
        await chargeRetries(deps, request, reply, [await deps.engine.jobs.get(request.params.id, scope)], 'single');
        return jobView(await deps.engine.jobs.retry(request.params.id, scope), deps.signer);
      },
    );

    api.get(
      '/v1/jobs/:id/output',
      {
        config,
        schema: { tags: ['jobs'], summary: 'Download the first output image', params: IdParams },
      },
      async (request, reply) => {
        const job = await deps.engine.jobs.get(request.params.id, jobScope(request));
        const output = job.outputs[0];
        if (!output)
          throw new PixqError('not_found', `job ${job.id} has no output (state ${job.state})`, { status: 404 });
        return reply
          .type(output.contentType)
          .header('content-length', output.bytes)
          .header('x-content-type-options', 'nosniff')
          .send(deps.blobs.stream(output.blob));
      },
    );

    api.get(
      '/v1/jobs/:id/input',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary: 'Download the input image as uploaded (404 for a job submitted by URL: no copy is kept)',
          params: IdParams,
        },
      },
      async (request, reply) => {
        const job = await deps.engine.jobs.get(request.params.id, jobScope(request));
        if (!job.inputBlob)
          throw new PixqError(
            'not_found',
            `job ${job.id} keeps no input image (it was ${job.inputUrl ? 'given by URL' : 'submitted without one'})`,
            { status: 404 },
          );
        reply.header('x-content-type-options', 'nosniff');
        // The type was found by the bytes at upload and stored with the upload: the bytes are streamed, not read.
        const uploaded = await deps.engine.uploads.typeOf(job.vendorId, job.inputBlob);
        if (uploaded && (await deps.blobs.exists(job.inputBlob))) {
          return reply
            .type(uploaded.contentType)
            .header('content-length', uploaded.bytes)
            .send(deps.blobs.stream(job.inputBlob));
        }
        // Every upload of it is past retention (or the blob is gone: a not_found PixqError, 404, from the store).
        const bytes = await deps.blobs.get(job.inputBlob);
        return reply.type((await sniffImage(bytes, deps.config.maxPixels)).contentType).send(bytes);
      },
    );

    api.get(
      '/v1/jobs/:id/events',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary: "The job's stored events, oldest first, a page at a time (its attempts, failures and progress)",
          params: IdParams,
          querystring: JobEventsQuery,
          response: { 200: JobEventList, ...problems },
        },
      },
      async (request) => {
        const job = await deps.engine.jobs.get(request.params.id, jobScope(request));
        const { afterId = 0, limit = 100 } = request.query;
        // One more than asked: whether it exists says if there is a next page.
        const events = await deps.engine.jobs.eventsAfter({
          vendorId: job.vendorId,
          jobId: job.id,
          afterId,
          limit: limit + 1,
        });
        const page = events.slice(0, limit);
        return { events: page, nextAfterId: events.length > limit ? page[page.length - 1].id : null };
      },
    );
  };

/** The engine's filter for the wire's: times as epoch milliseconds, `key=value` split at the first `=`. */
function filterOf(q: Static<typeof JobFilter>): Filter {
  return {
    state: q.state,
    type: q.type,
    batchId: q.batchId,
    createdAfter: time(q.createdAfter),
    createdBefore: time(q.createdBefore),
    metadata: q.metadata?.map((pair) => ({
      key: pair.slice(0, pair.indexOf('=')),
      value: pair.slice(pair.indexOf('=') + 1),
    })),
  };
}

function time(iso: string | undefined): number | undefined {
  return iso === undefined ? undefined : Date.parse(iso);
}
