import { PassThrough, type Readable } from 'node:stream';
import type { MultipartFile } from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { payloadTooLarge } from '../blobs/index.js';
import type { BlobStore } from '../blobs/types.js';
import type { Config } from '../config.js';
import type { AssetImage, Engine, JobSpec, Upload } from '../engine/index.js';
import { PixqError, validationFailed } from '../errors.js';
import { isAssetPrefix } from '@pixq/client/schemas';
import { checkUrlTarget, sniffImage, type SniffedImage } from '../intake/index.js';
import { parseOptions, type Processor } from '../processors/index.js';
import type { Budget, RateLimiter } from './rate-limit.js';
import type { JobSubmission } from './schemas.js';

export interface IntakeDeps {
  engine: Engine;
  blobs: BlobStore;
  processors: Map<string, Processor>;
  config: Config;
}

/**
 * Stores one uploaded image file: streamed to the blob store under the size limit and checked by its bytes
 * (type, pixel count, truncation) before they are stored, so a refused file leaves nothing behind and no
 * stored blob, which may be another vendor's bytes, is ever deleted here.
 */
export async function storeImageFile(deps: IntakeDeps, file: MultipartFile): Promise<AssetImage> {
  let image: SniffedImage | undefined;
  const ref = await deps.blobs.putStream(guarded(file.file), {
    maxBytes: deps.config.maxUploadBytes,
    // Busboy's own limit is one byte past this one (src/api/server.ts): the store refuses an oversized file
    // before busboy would cut it short.
    check: async (bytes) => {
      image = await sniffImage(bytes, deps.config.maxPixels);
    },
  });
  const { contentType, width, height } = image!;
  return { blob: ref.key, contentType, bytes: ref.bytes, width, height };
}

/** Stores one uploaded file as the vendor's upload (charged to its storage quota). */
export async function storeUpload(deps: IntakeDeps, vendorId: string, file: MultipartFile): Promise<Upload> {
  return deps.engine.uploads.create(vendorId, await storeImageFile(deps, file));
}

/**
 * Stores image bytes a request carried inline (base64 in a JSON or form body) as the vendor's upload, with the
 * same limits and checks as a file; they are checked before anything is stored.
 */
export async function storeUploadBytes(deps: IntakeDeps, vendorId: string, bytes: Buffer): Promise<Upload> {
  if (bytes.length > deps.config.maxUploadBytes) throw payloadTooLarge(deps.config.maxUploadBytes);
  const { contentType, width, height } = await sniffImage(bytes, deps.config.maxPixels);
  const ref = await deps.blobs.put(bytes, contentType);
  return deps.engine.uploads.create(vendorId, { blob: ref.key, contentType, bytes: ref.bytes, width, height });
}

/**
 * Busboy's part stream reports a malformed body (a form cut off before its closing boundary) by emitting
 * 'error' and closing at once, without recording the error on the stream. When that happens while
 * putStream is still creating its temp file, the pipeline it attaches afterwards never settles and the
 * request hangs forever (on the next request's timing, the part may even have failed before the route got
 * it). Handing putStream a PassThrough that records the failure as its own `errored` state makes a late
 * pipeline see it; the error becomes a 400 `invalid_multipart`.
 */
function guarded(source: Readable): Readable {
  const through = new PassThrough();
  const endedEarly = () => asMultipartProblem(new Error('the file part ended before its closing boundary'));
  // All of a small body can be parsed before the route gets the part: the stream may already have failed.
  if (source.destroyed && !source.readableEnded) return through.destroy(endedEarly());
  source.on('error', (err) => through.destroy(asMultipartProblem(err)));
  source.on('close', () => {
    if (!source.readableEnded) through.destroy(endedEarly());
  });
  source.pipe(through);
  return through;
}

/**
 * Busboy's own errors (no boundary, malformed part headers, a body cut off early) are plain Errors without a
 * `code`; they are the client's fault, so they become 400 `invalid_multipart` instead of a 500. Our own
 * errors, @fastify/multipart's coded limit errors (FST_*) and system errors (ENOSPC, ...) pass unchanged.
 */
export function asMultipartProblem(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  if (err instanceof PixqError || (err as NodeJS.ErrnoException).code !== undefined) return err;
  return new PixqError('invalid_multipart', `the multipart body is malformed: ${err.message}`, { status: 400 });
}

export function processorFor(deps: IntakeDeps, type: string): Processor {
  const processor = deps.processors.get(type);
  if (!processor) {
    throw new PixqError(
      'unknown_job_type',
      `unknown job type "${type}"; known types: ${[...deps.processors.keys()].join(', ')}`,
      {
        status: 400,
      },
    );
  }
  return processor;
}

const MAX_METADATA_BYTES = 8192;

/**
 * The one check of a job type and its options, for submissions and for templates alike: a known type and
 * options its processor accepts, returned with defaults applied (into `rawOptions` itself, see parseOptions).
 */
export function checkedWork(deps: IntakeDeps, type: string, rawOptions: Record<string, unknown>) {
  const processor = processorFor(deps, type);
  return { processor, options: parseOptions(processor, rawOptions) as Record<string, unknown> };
}

/**
 * The type and options a submission asks for: its own `type`, or its template's with the submission's options
 * laid over them (top-level keys replace the template's whole; nested objects are not merged).
 */
async function requestedWork(deps: IntakeDeps, vendorId: string, body: JobSubmission) {
  if ((body.type === undefined) === (body.template === undefined)) {
    throw validationFailed('a submission names exactly one of "type" and "template"');
  }
  if (body.type !== undefined) return { type: body.type, options: body.options ?? {} };
  const template = await deps.engine.templates.find(vendorId, body.template!);
  if (!template) {
    throw new PixqError(
      'unknown_template',
      `no template named "${body.template}"; GET /v1/templates lists yours and the built-in ones`,
      { status: 400 },
    );
  }
  return { type: template.type, options: { ...template.options, ...body.options } };
}

/** Turns a validated submission into a job spec: known type, valid options, an input the vendor may use. */
export async function toJobSpec(
  deps: IntakeDeps,
  vendorId: string,
  body: JobSubmission,
  idempotencyKey?: string,
): Promise<JobSpec> {
  const requested = await requestedWork(deps, vendorId, body);
  const { processor, options } = checkedWork(deps, requested.type, requested.options);
  if (body.metadata && Buffer.byteLength(JSON.stringify(body.metadata), 'utf8') > MAX_METADATA_BYTES) {
    throw validationFailed(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
  }
  return {
    type: processor.type,
    options,
    ...(await resolveInput(deps, vendorId, processor, body.input)),
    priority: body.priority,
    maxAttempts: body.maxAttempts,
    timeoutMs: body.timeoutMs,
    metadata: body.metadata,
    ...(body.webhookUrl !== undefined && { webhookUrl: await checkWebhookTarget(deps.config, body.webhookUrl) }),
    template: body.template,
    ...(body.publish !== undefined && { publish: publishTarget(body.publish) }),
    idempotencyKey,
  };
}

/** A submission's `publish` as the engine takes it: `true` is the job id itself, i.e. an empty prefix. */
function publishTarget(publish: NonNullable<JobSubmission['publish']>): JobSpec['publish'] {
  if (publish === true) return { prefix: '' };
  if ('prefix' in publish && !isAssetPrefix(publish.prefix)) {
    throw validationFailed(
      'publish.prefix must be asset path characters ([A-Za-z0-9._/-]) that, followed by a job id, make a valid asset path',
    );
  }
  return publish;
}

/**
 * A webhook target as stored: the same SSRF rules as image URLs (PIXQ_URL_ALLOWLIST for private hosts),
 * here when it is given and again by the delivery worker at every attempt. For endpoints and jobs' callbacks.
 */
export async function checkWebhookTarget(config: Pick<Config, 'urlAllowlist'>, url: string): Promise<string> {
  return (await checkUrlTarget(url, { allowlist: config.urlAllowlist })).href;
}

async function resolveInput(deps: IntakeDeps, vendorId: string, processor: Processor, input: JobSubmission['input']) {
  if (!processor.needsInput) {
    if (input) throw validationFailed(`job type ${processor.type} takes no input`);
    return {};
  }
  if (!input)
    throw validationFailed(
      `job type ${processor.type} needs an input: {"url": ...}, {"uploadId": ...} or a multipart "image" file`,
    );
  if ('url' in input) {
    const url = await checkUrlTarget(input.url, { allowlist: deps.config.urlAllowlist });
    return { inputUrl: url.href };
  }
  const upload = await deps.engine.uploads.get(input.uploadId, vendorId);
  return { inputBlob: upload.blob };
}

/**
 * Spends the background-removal budget of jobs about to be queued (a submission, a bulk, a retry): one per
 * such job, or per such step of a pipeline.
 */
export function chargeRemovals(
  limiter: RateLimiter,
  request: FastifyRequest,
  reply: FastifyReply,
  jobs: Pick<JobSpec, 'type' | 'options'>[],
) {
  return limiter.charge(request, reply, [removals(jobs)]);
}

/**
 * Spends what queueing jobs again spends, as submitting them would: a single retry its `image` unit, a bulk retry
 * its `bulk` unit and one `image` unit per job; both the removals. A vendor's request has spent its route's
 * budget (`image` or `bulk`) already. The admin key has no budgets: each vendor whose jobs it retries pays, as if
 * it had retried them itself.
 */
export async function chargeRetries(
  deps: IntakeDeps & { limiter: RateLimiter },
  request: FastifyRequest,
  reply: FastifyReply,
  jobs: (Pick<JobSpec, 'type' | 'options'> & { vendorId: string })[],
  kind: 'single' | 'bulk',
) {
  const route: Budget = kind === 'single' ? 'image' : 'bulk';
  const costs = (own: typeof jobs): [Budget, number][] => [
    ...(kind === 'bulk' ? [['image', own.length] as [Budget, number]] : []),
    removals(own),
  ];
  if (request.caller.kind === 'vendor') return deps.limiter.charge(request, reply, costs(jobs));
  for (const vendorId of new Set(jobs.map((j) => j.vendorId))) {
    const payer = await deps.engine.vendors.get(vendorId);
    const own = jobs.filter((j) => j.vendorId === vendorId);
    await deps.limiter.charge(request, reply, [[route, 1], ...costs(own)], payer);
  }
}

function removals(jobs: Pick<JobSpec, 'type' | 'options'>[]): [Budget, number] {
  return ['removeBackground', jobs.reduce((sum, job) => sum + removeBackgroundCost(job), 0)];
}

function removeBackgroundCost(spec: Pick<JobSpec, 'type' | 'options'>): number {
  if (spec.type === 'remove-background') return 1;
  if (spec.type !== 'pipeline') return 0;
  const steps = (spec.options?.steps ?? []) as { type?: string }[];
  return steps.filter((s) => s.type === 'remove-background').length;
}
