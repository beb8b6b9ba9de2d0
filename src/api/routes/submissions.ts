import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { newId } from '../../ids.js';
import { PixqError, validationFailed } from '../../errors.js';
import { vendorOf } from '../auth.js';
import { checkActive } from '../../engine/index.js';
import { asMultipartProblem, storeUpload } from '../intake.js';
import { readMultipart } from '../multipart.js';
import { submitJobs } from '../submit.js';
import { BatchView, BulkSubmission, IdParams, problemResponses, UploadView, type JobSubmission } from '../schemas.js';
import { uploadView } from '../views.js';
import type { ApiDeps } from '../deps.js';

const problems = problemResponses(400, 401, 404, 413, 429);

/** Bulk submissions, uploads for reuse, and batch progress. */
export const submissionRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = { access: 'vendor' as const };
    const maxJobs = deps.config.maxBulkFiles;

    api.post(
      '/v1/jobs/bulk',
      {
        config: { ...config, budgets: ['bulk'] },
        schema: {
          tags: ['jobs'],
          summary: `Submit up to ${maxJobs} jobs in one transaction (JSON {jobs}, or multipart: many "image" files sharing type and options)`,
          body: BulkSubmission,
          response: {
            202: Type.Object({ batchId: Type.String(), jobIds: Type.Array(Type.String()), count: Type.Integer() }),
            ...problems,
          },
        },
        preValidation: async (request) => {
          if (!request.isMultipart()) return;
          const { fields, uploadIds } = await readMultipart(request, deps, maxJobs);
          if (uploadIds.length === 0)
            throw validationFailed('a multipart bulk request needs at least one "image" file');
          if (typeof fields.publish === 'object' && fields.publish !== null && 'path' in fields.publish) {
            throw validationFailed(
              'a bulk\'s shared "publish" takes {"prefix": ...} or true: one path cannot hold every output',
            );
          }
          request.body = { jobs: uploadIds.map((uploadId) => ({ ...fields, input: { uploadId } }) as JobSubmission) };
        },
      },
      async (request, reply) => {
        const batchId = newId();
        const jobs = await submitJobs(deps, request, reply, request.body.jobs, { batchId });
        return reply.code(202).send({ batchId, jobIds: jobs.map((j) => j.id), count: jobs.length });
      },
    );

    api.post(
      '/v1/uploads',
      {
        config: { ...config, budgets: ['image'] },
        schema: {
          tags: ['uploads'],
          summary: 'Upload an image once (multipart field "image") to use in several jobs',
          response: { 201: UploadView, ...problems, ...problemResponses(403, 415, 422) },
        },
      },
      async (request, reply) => {
        // Refused before a byte is stored: the bytes of an image may already be another upload's blob.
        checkActive(vendorOf(request));
        if (!request.isMultipart())
          throw new PixqError('unsupported_media_type', 'send the image as multipart/form-data in the field "image"', {
            status: 415,
          });
        const file = await request.file().catch((err: unknown) => {
          throw asMultipartProblem(err);
        });
        if (!file || file.fieldname !== 'image')
          throw validationFailed('send the image in the multipart field "image"');
        const upload = await storeUpload(deps, vendorOf(request).id, file);
        return reply.code(201).send(uploadView(upload));
      },
    );

    api.get(
      '/v1/batches/:id',
      {
        config,
        schema: {
          tags: ['jobs'],
          summary: 'Counts by state and overall percent of a bulk submission',
          params: IdParams,
          response: { 200: BatchView, ...problems },
        },
      },
      async (request) => deps.engine.jobs.batch(request.params.id, vendorOf(request).id),
    );
  };
