import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Job, JobOutput } from '../../engine/index.js';
import { PixqError, validationFailed } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { readMultipart } from '../multipart.js';
import { problemResponses } from '../schemas.js';
import { submitJobs } from '../submit.js';
import { compatMetadata, compatRoute, finishedJob, pixqModel } from './common.js';

/**
 * rembg's HTTP server (`rembg s`): `GET /api/remove?url=...` and `POST /api/remove` (multipart `file`) answer
 * the cut-out PNG. The request is an ordinary pixq job (fair share, budgets, metadata `via: rembg`); the
 * answer waits for it up to PIXQ_SYNC_WAIT_MS, then gives 504 with the job's id to follow on /v1.
 */
const Flag = Type.Boolean();
const Level = Type.Integer({ minimum: 0, maximum: 255 });
const FormParams = {
  model: Type.Optional(
    Type.String({ maxLength: 64, description: 'rembg model name (default u2net), mapped to a pixq model' }),
  ),
  a: Type.Optional(Type.Boolean({ description: 'alpha matting' })),
  af: Type.Optional(Level),
  ab: Type.Optional(Level),
  ae: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  om: Type.Optional(Flag),
  ppm: Type.Optional(Flag),
};
const QueryParams = {
  bgc: Type.Optional(Type.String({ maxLength: 32, description: 'background colour r,g,b,a (0..255 each)' })),
  extras: Type.Optional(Type.String({ maxLength: 4096, description: 'JSON object; kept as the job’s metadata' })),
};
const GetQuery = Type.Object(
  { url: Type.String({ minLength: 1, maxLength: 2048 }), ...FormParams, ...QueryParams },
  { additionalProperties: false },
);
const PostQuery = Type.Object(QueryParams, { additionalProperties: false });
const PostForm = Type.Object(FormParams, { additionalProperties: false });
type Params = Static<typeof PostForm> & Static<typeof PostQuery>;

const DEFAULTS = { af: 240, ab: 10, ae: 10 };

export const rembgRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    const api = app.withTypeProvider<TypeBoxTypeProvider>();
    const tags = ['compat: rembg'];
    const problems = {
      ...problemResponses(400, 401, 403, 413, 415, 422, 429, 504),
      200: {
        description: 'The cut-out (or mask) as PNG',
        content: { 'image/png': { schema: Type.String({ format: 'binary' }) } },
      },
    };

    api.get(
      '/remove',
      {
        config: compatRoute('image'),
        schema: {
          tags,
          summary: 'Remove the background of the image at url; answers image/png',
          querystring: GetQuery,
          response: problems,
        },
      },
      async (request, reply) => {
        const { url, ...params } = request.query;
        return removeSynchronously(deps, request, reply, { url }, params);
      },
    );

    api.post(
      '/remove',
      {
        config: compatRoute('image'),
        schema: {
          tags,
          summary: 'Remove the background of the uploaded file (multipart "file"; bgc and extras in the query)',
          querystring: PostQuery,
          response: problems,
        },
      },
      async (request, reply) => {
        if (!request.isMultipart())
          throw new PixqError('unsupported_media_type', 'send the image as multipart/form-data in the field "file"', {
            status: 415,
          });
        const { fields, uploadIds } = await readMultipart(request, deps, 1, 'file');
        if (uploadIds.length === 0) throw validationFailed('send the image in the multipart field "file"');
        return removeSynchronously(
          deps,
          request,
          reply,
          { uploadId: uploadIds[0] },
          { ...formParams(fields), ...request.query },
        );
      },
    );
  };

/** rembg's form fields are text; they are converted and checked like the GET query string. */
function formParams(fields: Record<string, unknown>): Static<typeof PostForm> {
  const converted = Value.Convert(PostForm, fields);
  const error = Value.Errors(PostForm, converted).First();
  if (error) throw validationFailed(`form field ${error.path.slice(1) || '(unknown)'}: ${error.message}`);
  return converted as Static<typeof PostForm>;
}

async function removeSynchronously(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  input: { url: string } | { uploadId: string },
  params: Params,
) {
  const extras = parseExtras(params.extras);
  const [submitted] = await submitJobs(deps, request, reply, [
    {
      type: 'remove-background',
      input,
      options: removalOptions(params),
      metadata: compatMetadata('rembg', { model: params.model ?? 'u2net', ...(extras && { extras }) }),
    },
  ]);
  const job = await finishedJob(deps, request, reply, submitted.id);
  if (job.state !== 'succeeded' || !job.outputs[0]) throw jobFailure(job);
  const output: JobOutput = job.outputs[0];
  return reply
    .type(output.contentType)
    .header('content-length', output.bytes)
    .header('x-pixq-job-id', job.id)
    .send(deps.blobs.stream(output.blob));
}

/** rembg's parameters as remove-background options. */
function removalOptions(p: Params): Record<string, unknown> {
  const onlyMask = p.om ?? false;
  return {
    model: pixqModel(p.model),
    format: 'png',
    onlyMask,
    postProcessMask: p.ppm ?? false,
    ...(p.a && {
      alphaMatting: {
        foregroundThreshold: p.af ?? DEFAULTS.af,
        backgroundThreshold: p.ab ?? DEFAULTS.ab,
        erodeSize: p.ae ?? DEFAULTS.ae,
      },
    }),
    // As in rembg, a mask has no background colour: bgc is ignored with om.
    ...(p.bgc !== undefined && !onlyMask && { background: backgroundColour(p.bgc) }),
  };
}

/** rembg's `r,g,b,a` (each 0..255) as a colour pixq parses. */
function backgroundColour(bgc: string): string {
  const parts = bgc.split(',').map((v) => v.trim());
  if (parts.length !== 4 || !parts.every((v) => /^\d{1,3}$/.test(v) && Number(v) <= 255)) {
    throw validationFailed(`bgc must be r,g,b,a with each 0..255, got "${bgc}"`);
  }
  const [r, g, b, a] = parts.map(Number);
  return `rgba(${r}, ${g}, ${b}, ${Math.round((a / 255) * 1000) / 1000})`;
}

function parseExtras(extras: string | undefined): Record<string, unknown> | undefined {
  if (extras === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(extras);
  } catch {
    throw validationFailed('extras must be JSON text');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw validationFailed('extras must be a JSON object');
  return value as Record<string, unknown>;
}

/** A failed job as the problem the synchronous caller gets: the job's own code, with a status for its kind. */
function jobFailure(job: Job): PixqError {
  const code = job.error?.code ?? (job.state === 'cancelled' ? 'cancelled' : 'internal_error');
  const status = ['invalid_image', 'url_fetch_failed', 'url_not_allowed'].includes(code)
    ? 422
    : code === 'cancelled'
      ? 409
      : 503;
  return new PixqError(code, `job ${job.id} ${job.state}: ${job.error?.message ?? 'no output'}`, {
    status,
    details: { jobId: job.id },
  });
}
