import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { JobState } from '../../engine/index.js';
import { PixqError } from '../../errors.js';
import { vendorOf } from '../auth.js';
import { chargeRemovals } from '../intake.js';
import type { Budget } from '../rate-limit.js';
import { readMultipart } from '../multipart.js';
import { submitJobs } from '../submit.js';
import { IdParams, JobList, JobListQuery, JobSubmission, JobView, problemResponses } from '../schemas.js';
import { jobView } from '../views.js';
import type { ApiDeps } from '../deps.js';

const problems = problemResponses(400, 401, 404, 429);
const IdempotencyHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) });

/** Submitting, reading, listing, cancelling and retrying one vendor's jobs. */
export const jobRoutes = (deps: ApiDeps): FastifyPluginAsync => async (app) => {
  const api = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = { access: 'vendor' as const };
  // A retry queues a job again: it spends what submitting that job spends.
  const submission = { ...config, budgets: ['image'] as Budget[] };

  api.post('/v1/jobs', {
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
      request.body = { ...fields, ...(uploadIds.length > 0 && { input: { uploadId: uploadIds[0] } }) } as JobSubmission;
    },
  }, async (request, reply) => {
    const jobs = await submitJobs(deps, request, reply, [request.body], { idempotencyKey: request.headers['idempotency-key'] });
    return reply.code(202).header('location', `/v1/jobs/${jobs[0].id}`).send(jobView(jobs[0], deps.signer));
  });

  api.get('/v1/jobs', {
    config,
    schema: { tags: ['jobs'], summary: 'List your jobs, newest first', querystring: JobListQuery, response: { 200: JobList, ...problems } },
  }, async (request) => {
    const q = request.query;
    const page = await deps.engine.jobs.list(
      vendorOf(request).id,
      { state: q.state as JobState | undefined, type: q.type, batchId: q.batchId, createdAfter: time(q.createdAfter), createdBefore: time(q.createdBefore) },
      q.limit ?? 20,
      q.cursor,
    );
    return { jobs: page.jobs.map((j) => jobView(j, deps.signer)), nextCursor: page.nextCursor };
  });

  api.get('/v1/jobs/:id', {
    config,
    schema: { tags: ['jobs'], summary: 'Get a job', params: IdParams, response: { 200: JobView, ...problems } },
  }, async (request) => jobView(await deps.engine.jobs.get(request.params.id, vendorOf(request).id), deps.signer));

  api.post('/v1/jobs/:id/cancel', {
    config,
    schema: { tags: ['jobs'], summary: 'Cancel a job', params: IdParams, response: { 200: JobView, ...problems, ...problemResponses(409) } },
  }, async (request) => jobView(await deps.engine.jobs.cancel(request.params.id, vendorOf(request).id), deps.signer));

  api.post('/v1/jobs/:id/retry', {
    config: submission,
    schema: { tags: ['jobs'], summary: 'Queue a failed or cancelled job again', params: IdParams, response: { 200: JobView, ...problems, ...problemResponses(403, 409) } },
  }, async (request, reply) => {
    const vendorId = vendorOf(request).id;
    await chargeRemovals(deps.limiter, request, reply, [await deps.engine.jobs.get(request.params.id, vendorId)]);
    return jobView(await deps.engine.jobs.retry(request.params.id, vendorId), deps.signer);
  });

  api.get('/v1/jobs/:id/output', {
    config,
    schema: { tags: ['jobs'], summary: 'Download the first output image', params: IdParams },
  }, async (request, reply) => {
    const job = await deps.engine.jobs.get(request.params.id, vendorOf(request).id);
    const output = job.outputs[0];
    if (!output) throw new PixqError('not_found', `job ${job.id} has no output (state ${job.state})`, { status: 404 });
    return reply
      .type(output.contentType)
      .header('content-length', output.bytes)
      .header('x-content-type-options', 'nosniff')
      .send(deps.blobs.stream(output.blob));
  });
};

function time(iso: string | undefined): number | undefined {
  return iso === undefined ? undefined : Date.parse(iso);
}
