import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { Job, JobOutput } from '../../engine/index.js';
import { PixqError } from '../../errors.js';
import { parseColour } from '../../processors/colour.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import { storeUploadBytes } from '../intake.js';
import { readMultipart, trackSubmittedUploads } from '../multipart.js';
import { toProblem } from '../problems.js';
import { submitJobs } from '../submit.js';
import { compatMetadata, compatRoute, finishedJob } from './common.js';

/**
 * remove.bg's API (`POST /v1.0/removebg`, `GET /v1.0/account`), so shops, plugins and apps that call it switch
 * to pixq by changing the base URL and the key (`X-Api-Key`). A request is an ordinary remove-background job of
 * the key's vendor (same intake and SSRF rules, fair share, budgets, metadata `via: removebg`), answered when it
 * finishes (PIXQ_SYNC_WAIT_MS). Answers and errors are remove.bg's: the image with X-Width, X-Height, X-Type and
 * X-Foreground-* (or JSON with Accept: application/json), errors as `{errors: [{title, code, detail}]}` with its
 * statuses. A parameter or value pixq cannot honour is a 400 naming it, never ignored.
 */

/** remove.bg's `size`: the largest output, in megapixels (undefined: the photo's own, within PIXQ_MAX_PIXELS). */
const SIZES: Record<string, number | undefined> = {
  preview: 0.25,
  small: 0.25,
  regular: 0.25,
  medium: 1.5,
  hd: 4,
  full: undefined,
  '4k': undefined,
  '50MP': undefined,
  auto: undefined,
};
const TYPES = ['auto', 'person', 'product', 'car', 'animal', 'graphic', 'transportation'];
const TYPE_LEVELS = ['none', '1', '2', 'latest'];
const FORMATS: Record<string, 'png' | 'jpeg' | 'webp' | 'auto'> = {
  auto: 'auto',
  png: 'png',
  jpg: 'jpeg',
  webp: 'webp',
};
/** The one region of interest pixq can honour: the whole photo (remove.bg's default). */
const WHOLE_PHOTO = '0% 0% 100% 100%';
const SOURCES = ['image_file', 'image_file_b64', 'image_url'] as const;
const PARAMETERS = new Set([
  ...SOURCES,
  'size',
  'type',
  'type_level',
  'format',
  'roi',
  'crop',
  'crop_margin',
  'scale',
  'position',
  'channels',
  'bg_color',
  'add_shadow',
  'shadow_type',
  'shadow_opacity',
  'semitransparency',
]);
/** remove.bg's parameters pixq does not offer, with the reason given to the caller. */
const UNSUPPORTED: Record<string, string> = {
  bg_image_url: 'pixq has no background images; use bg_color',
  bg_image_file: 'pixq has no background images; use bg_color',
};

/** Titles of remove.bg's error codes, as its own answers word them. */
const TITLES: Record<string, string> = {
  auth_failed: 'Authentication failed',
  rate_limit_exceeded: 'Rate limit exceeded',
  missing_source: 'No image given',
  multiple_sources: 'Multiple image sources given',
  invalid_image_url: 'Invalid image_url',
  failed_image_download: 'Failed to download image from given image_url',
  file_too_large: 'File too large',
  invalid_file_type: 'Invalid file type',
  failed_to_read_image: 'There was an error reading the image',
  resolution_too_high: 'Image resolution too high',
  unknown_foreground: 'Could not identify foreground in image',
  unsupported_parameter: 'Parameter not supported',
  multiple_shadow_params: 'Multiple shadow parameters given',
};

/** pixq's error codes as remove.bg's: [status, code]. Others keep their code and status. */
const AS_REMOVE_BG: Record<string, [number, string]> = {
  unauthorized: [403, 'auth_failed'],
  invalid_token: [403, 'auth_failed'],
  rate_limited: [429, 'rate_limit_exceeded'],
  quota_exceeded: [429, 'rate_limit_exceeded'],
  url_not_allowed: [400, 'invalid_image_url'],
  url_fetch_failed: [400, 'failed_image_download'],
  payload_too_large: [400, 'file_too_large'],
  unsupported_media_type: [400, 'invalid_file_type'],
  invalid_image: [400, 'failed_to_read_image'],
  output_too_large: [400, 'resolution_too_high'],
};

const bad = (code: string, message: string) => new PixqError(code, message, { status: 400 });

type Params = Record<string, string>;

export const removeBgRoutes =
  (deps: ApiDeps): FastifyPluginAsync =>
  async (app) => {
    app.setErrorHandler(answerError);
    // Base64 images come in JSON or form bodies: room for the largest upload, as base64, and the other fields.
    const bodyLimit = Math.ceil((deps.config.maxUploadBytes * 4) / 3) + 64 * 1024;
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    const tags = ['compat: remove.bg'];

    app.post(
      '/removebg',
      {
        bodyLimit,
        config: compatRoute('image'),
        schema: {
          tags,
          summary: "Remove the background (remove.bg's request and answer); multipart, JSON or form-urlencoded",
        },
      },
      async (request, reply) => {
        const { params, uploadId } = await readRequest(deps, request);
        const options = removalOptions(params);
        const input = uploadId !== undefined ? { uploadId } : await inlineInput(deps, request, params);
        const [submitted] = await submitJobs(deps, request, reply, [
          { type: 'remove-background', input, options, metadata: compatMetadata('removebg', {}) },
        ]);
        return answerJob(deps, request, reply, await finishedJob(deps, request, reply, submitted.id), params);
      },
    );

    app.get(
      '/account',
      {
        config: compatRoute(),
        schema: {
          tags,
          summary: "The key's background-removal budget, in remove.bg's account shape",
          response: { 200: Account },
        },
      },
      async (request) => {
        const left = await deps.limiter.remaining(vendorOf(request), 'removeBackground');
        return {
          data: {
            attributes: {
              credits: { total: left.remaining, subscription: left.remaining, payg: 0, enterprise: 0 },
              api: { free_calls: left.remaining, sizes: 'all' },
            },
          },
        };
      },
    );
  };

const Account = Type.Object({
  data: Type.Object({
    attributes: Type.Object({
      credits: Type.Object({
        total: Type.Number(),
        subscription: Type.Number(),
        payg: Type.Number(),
        enterprise: Type.Number(),
      }),
      api: Type.Object({ free_calls: Type.Integer(), sizes: Type.String() }),
    }),
  }),
});

/** The request's parameters as text, whatever its shape, and the upload of a multipart `image_file`. */
async function readRequest(deps: ApiDeps, request: FastifyRequest): Promise<{ params: Params; uploadId?: string }> {
  if (request.isMultipart()) {
    const { fields, uploadIds } = await readMultipart(request, deps, 1, 'image_file');
    const params = asParams(fields);
    if (params.image_file !== undefined) throw fileAsText();
    if (uploadIds.length > 0) params.image_file = '(file)';
    checkSources(params);
    return { params, uploadId: uploadIds[0] };
  }
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('missing_source', 'send multipart/form-data, application/json or application/x-www-form-urlencoded');
  const params = asParams(body as Record<string, unknown>);
  if (params.image_file !== undefined) throw fileAsText();
  checkSources(params);
  return { params };
}

const fileAsText = () =>
  bad('invalid_file_type', 'image_file must be a file part of a multipart body; send text as image_file_b64');

/** Every field named, known and text (JSON callers may send booleans and numbers as such). */
function asParams(raw: Record<string, unknown>): Params {
  const params: Params = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name in UNSUPPORTED) throw bad('unsupported_parameter', `${name} is not supported: ${UNSUPPORTED[name]}`);
    if (!PARAMETERS.has(name)) throw bad('unsupported_parameter', `${name} is not a parameter pixq supports`);
    if (typeof value === 'string') params[name] = value;
    else if (typeof value === 'boolean' || typeof value === 'number') params[name] = String(value);
    else throw bad('unsupported_parameter', `${name} must be text, a number or a boolean`);
  }
  return params;
}

function checkSources(params: Params): void {
  const given = SOURCES.filter((s) => params[s] !== undefined && params[s] !== '');
  if (given.length === 0)
    throw bad('missing_source', 'give the source image in image_file, image_file_b64 or image_url');
  if (given.length > 1)
    throw bad('multiple_sources', `give one of image_file, image_file_b64, image_url; got ${given.join(', ')}`);
}

/** A JSON or form request's image: a URL (checked by the intake like every URL input), or base64 stored as an upload. */
async function inlineInput(deps: ApiDeps, request: FastifyRequest, params: Params) {
  if (params.image_url !== undefined) return { url: params.image_url };
  const text = params.image_file_b64.replace(/^data:[^,]*;base64,/, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) throw bad('invalid_file_type', 'image_file_b64 is not base64');
  const vendor = vendorOf(request);
  const upload = await storeUploadBytes(deps, vendor.id, Buffer.from(text, 'base64'));
  trackSubmittedUploads(request, vendor.id, [upload.id]);
  return { uploadId: upload.id };
}

/** remove.bg's parameters as remove-background options; a value pixq cannot honour is refused, naming it. */
function removalOptions(p: Params): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const size = p.size ?? 'preview';
  if (!(size in SIZES)) throw bad('invalid_size', `size "${size}" is not one of ${Object.keys(SIZES).join(', ')}`);
  if (SIZES[size] !== undefined) options.maxMegapixels = SIZES[size];
  if (p.type !== undefined && !TYPES.includes(p.type))
    throw bad('invalid_type', `type "${p.type}" is not one of ${TYPES.join(', ')}`);
  if (p.type_level !== undefined && !TYPE_LEVELS.includes(p.type_level))
    throw bad('invalid_type_level', `type_level "${p.type_level}" is not one of ${TYPE_LEVELS.join(', ')}`);
  if (p.roi !== undefined && p.roi !== WHOLE_PHOTO)
    throw bad('unsupported_parameter', `roi: pixq looks at the whole photo; only "${WHOLE_PHOTO}" is accepted`);
  options.crop = flag(p, 'crop', false);
  if (p.crop_margin !== undefined) options.cropMargin = cropMargin(p.crop_margin);
  if (p.scale !== undefined) options.scale = scale(p.scale);
  if (p.position !== undefined) options.position = p.position;
  const channels = p.channels ?? 'rgba';
  if (channels !== 'rgba' && channels !== 'alpha')
    throw bad('invalid_channels', `channels "${channels}" is not rgba or alpha`);
  options.onlyMask = channels === 'alpha';
  if (p.bg_color !== undefined) options.background = bgColour(p.bg_color);
  const shadow = shadowOption(p);
  if (shadow) options.shadow = shadow;
  if (!flag(p, 'semitransparency', true)) options.postProcessMask = true;
  const format = FORMATS[p.format ?? 'auto'];
  if (!format) throw bad('invalid_format', `format "${p.format}": pixq writes auto, png, jpg and webp (no zip)`);
  options.format = format === 'auto' ? (opaque(options.background) ? 'jpeg' : 'png') : format;
  return options;
}

function flag(p: Params, name: string, fallback: boolean): boolean {
  const value = p[name];
  if (value === undefined || value === '') return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw bad(`invalid_${name}`, `${name} must be true or false, got "${value}"`);
}

/** "30px", "10%", "0", or 2-4 of them; a bare number is pixels. */
function cropMargin(value: string): string {
  const parts = value.trim().split(/\s+/);
  if (parts.length > 4 || !parts.every((v) => /^\d+(\.\d+)?(px|%)?$/.test(v)))
    throw bad('invalid_crop_margin', `crop_margin "${value}": give 1-4 values in px or %`);
  return parts.map((v) => (/(px|%)$/.test(v) ? v : `${v}px`)).join(' ');
}

function scale(value: string): number | 'original' {
  if (value === 'original') return value;
  const match = /^(\d+(?:\.\d+)?)%$/.exec(value);
  const percent = match ? Number(match[1]) : NaN;
  if (!(percent >= 10 && percent <= 100)) throw bad('invalid_scale', `scale "${value}": 10% to 100%, or original`);
  return percent;
}

/** remove.bg's colours: hex without `#` (3, 4, 6 or 8 digits) or a colour name. */
function bgColour(value: string): string {
  const colour = /^[0-9a-f]{3,8}$/i.test(value) ? `#${value}` : value;
  try {
    parseColour(colour, 'bg_color');
  } catch {
    throw bad('invalid_bg_color', `bg_color "${value}": a hex colour (81d4fa, fff, 81d4fa77) or a colour name`);
  }
  return colour;
}

function opaque(background: unknown): boolean {
  return typeof background === 'string' && parseColour(background).alpha >= 1;
}

/** add_shadow (remove.bg's old switch) or shadow_type `drop` give pixq's drop shadow; shadow_opacity 0-100 its darkness. */
function shadowOption(p: Params): Record<string, number> | undefined {
  if (p.add_shadow !== undefined && p.shadow_type !== undefined)
    throw bad('multiple_shadow_params', 'give either add_shadow or shadow_type');
  const type = p.shadow_type ?? (flag(p, 'add_shadow', false) ? 'drop' : 'none');
  if (type !== 'drop' && type !== 'none')
    throw bad('unsupported_parameter', `shadow_type "${type}": pixq draws drop shadows only (drop, none)`);
  if (type === 'none') {
    if (p.shadow_opacity !== undefined) throw bad('invalid_shadow_opacity', 'shadow_opacity needs a shadow');
    return undefined;
  }
  if (p.shadow_opacity === undefined || p.shadow_opacity === 'auto') return {};
  const opacity = /^\d+(\.\d+)?$/.test(p.shadow_opacity) ? Number(p.shadow_opacity) : NaN;
  if (!(opacity <= 100)) throw bad('invalid_shadow_opacity', `shadow_opacity "${p.shadow_opacity}": 0 to 100`);
  return { opacity: opacity / 100 };
}

/** The finished job as remove.bg answers: the image and its headers, or JSON; a failure in its error shape. */
async function answerJob(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  job: Job & { outputs: JobOutput[] },
  params: Params,
) {
  const output = job.outputs[0];
  if (job.state !== 'succeeded' || !output) throw jobFailure(job);
  const result = job.result as { subjectFound?: boolean; foreground?: Record<string, number> | null } | null;
  const box = result?.foreground;
  if (!result?.subjectFound || !box)
    throw bad('unknown_foreground', `job ${job.id}: no subject was found in the image`);
  reply.header('x-width', output.width).header('x-height', output.height).header('x-pixq-job-id', job.id);
  if (params.type_level !== 'none')
    reply.header('x-type', params.type && params.type !== 'auto' ? params.type : 'other');
  for (const side of ['top', 'left', 'width', 'height'] as const) reply.header(`x-foreground-${side}`, box[side]);
  if (wantsJson(request)) {
    const bytes = await deps.blobs.get(output.blob);
    return reply.type('application/json').send({
      data: {
        result_b64: bytes.toString('base64'),
        foreground_top: box.top,
        foreground_left: box.left,
        foreground_width: box.width,
        foreground_height: box.height,
      },
    });
  }
  return reply.type(output.contentType).header('content-length', output.bytes).send(deps.blobs.stream(output.blob));
}

function wantsJson(request: FastifyRequest): boolean {
  return /\bapplication\/json\b/i.test(request.headers.accept ?? '');
}

/** A failed job: its own code, as remove.bg words it when it has a word for it; otherwise a 503 to retry. */
function jobFailure(job: Job): PixqError {
  const code = job.error?.code ?? (job.state === 'cancelled' ? 'cancelled' : 'internal_error');
  const status = code in AS_REMOVE_BG ? AS_REMOVE_BG[code][0] : 503;
  return new PixqError(code, `job ${job.id} ${job.state}: ${job.error?.message ?? 'no output'}`, {
    status,
    details: { jobId: job.id },
  });
}

/**
 * Every refusal in remove.bg's shape. A spent budget also carries remove.bg's X-RateLimit-Limit, -Remaining and
 * -Reset (epoch seconds) next to Retry-After; an outage keeps its 503 or 507 and Retry-After.
 */
function answerError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const problem = toProblem(err);
  if (problem.status >= 500 && problem.code === 'internal_error') request.log.error({ err }, 'request failed');
  const [status, code] = AS_REMOVE_BG[problem.code] ?? [problem.status, problem.code];
  const details = problem.details as { limit?: number; retryAfterSeconds?: number } | undefined;
  if (details?.retryAfterSeconds !== undefined) reply.header('retry-after', String(details.retryAfterSeconds));
  if (status === 429 && details?.retryAfterSeconds !== undefined) {
    reply
      .header('x-ratelimit-limit', String(details.limit ?? 0))
      .header('x-ratelimit-remaining', '0')
      .header('x-ratelimit-reset', String(Math.ceil(Date.now() / 1000) + details.retryAfterSeconds));
  }
  const title = TITLES[code] ?? problem.title;
  return reply
    .code(status)
    .type('application/json')
    .send({ errors: [{ title, code, detail: problem.detail }] });
}
