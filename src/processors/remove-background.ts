import os from 'node:os';
import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import sharp, { type Sharp } from 'sharp';
import type { Config, RemoveBackgroundBackend } from '../config.js';
import { sniffImage } from '../intake/index.js';
import { parseColour, type Colour } from './colour.js';
import { openImage, type OpenedImage } from './image.js';
import { checkOutputSize } from './output-size.js';
import { DEFAULT_MODEL, MODEL_NAMES, MODELS, type ModelName, type ModelSpec } from './models/catalog.js';
import { locateModel } from './models/locate.js';
import { modelUnavailable } from './models/model-files.js';
import { postProcessMask, refineMask, scaleMask } from './models/mask.js';
import { matteAlpha } from './models/matting.js';
import { raceAbort } from './abort.js';
import { modelInput } from './models/resample.js';
import { SessionCache } from './models/sessions.js';
import { toInputTensor, toMask } from './models/tensors.js';
import { RembgBackend } from './rembg/backend.js';
import type { RembgParams } from './rembg/client.js';
import { validationFailed } from '../errors.js';
import { composeCutout, composesLocally, validateCutout, withMask, type Cutout } from './cutout/compose.js';
import { reframes } from './cutout/framing.js';
import { CutoutOptionProperties } from './cutout/options.js';
import type { Processor, ProcessorContext, ProcessorOutput, ProcessorResult } from './types.js';

const ModelOption = Type.Union(
  MODEL_NAMES.map((name) => Type.Literal(name)),
  {
    description:
      `Segmentation model (default ${DEFAULT_MODEL} locally, u2net on rembg servers); ` +
      'local rembg models must be installed or downloadable.',
  },
) as unknown as TUnion<TLiteral<ModelName>[]>;

/** rembg's own default, and what `backend: "rembg"` runs when no model is named. */
const DEFAULT_REMBG_MODEL: ModelName = 'u2net';

const backendOption = (fallback: RemoveBackgroundBackend) =>
  Type.Union([Type.Literal('local'), Type.Literal('rembg')], {
    default: fallback,
    description: 'local: ONNX Runtime in the worker; rembg: the remote rembg servers of PIXQ_REMBG_URLS.',
  });

const Level = (description: string, fallback: number) =>
  Type.Integer({ minimum: 0, maximum: 255, default: fallback, description });

const AlphaMattingOptions = Type.Object(
  {
    foregroundThreshold: Level('Mask values above this are sure subject (rembg af).', 240),
    backgroundThreshold: Level('Mask values below this are sure background (rembg ab).', 10),
    erodeSize: Type.Integer({
      minimum: 0,
      maximum: 100,
      default: 10,
      description: 'Erosion of both sure regions in pixels (rembg ae).',
    }),
  },
  {
    additionalProperties: false,
    description: 'Refine the edge with a trimap and a colour guided filter (soft hair, fur, blur).',
  },
);

export const RemoveBackgroundOptions = Type.Object(
  {
    model: Type.Optional(ModelOption),
    format: Type.Union([Type.Literal('png'), Type.Literal('webp'), Type.Literal('jpeg')], {
      default: 'png',
      description: 'jpeg has no alpha: without an opaque background it is flattened onto white.',
    }),
    background: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Flatten onto this colour; omit for transparency.' }),
    ),
    onlyMask: Type.Boolean({ default: false, description: 'Return the greyscale alpha mask instead of the cut-out.' }),
    ...CutoutOptionProperties,
    refineEdges: Type.Boolean({
      default: true,
      description: 'Drop small disconnected blobs and haze, and feather the upscaled edge.',
    }),
    backend: backendOption('local'),
    postProcessMask: Type.Boolean({
      default: false,
      description: "rembg's ppm: open, blur and cut the mask at half, for a smooth hard edge.",
    }),
    alphaMatting: Type.Optional(AlphaMattingOptions),
  },
  { additionalProperties: false },
);

export type RemoveBackgroundOptions = Static<typeof RemoveBackgroundOptions>;

export interface RemoveBackgroundProcessor extends Processor<typeof RemoveBackgroundOptions> {
  /** Closes the loaded model sessions (their child processes); for shutdown and tests. */
  close(): Promise<void>;
  /** Models whose sessions are loaded or loading now (released after PIXQ_MODEL_IDLE_MS unused). */
  readonly loadedModels: string[];
  /** Process ids of the loaded sessions' child processes, which exit when their session is released. */
  modelPids(): Promise<number[]>;
  /** The pool of PIXQ_REMBG_URLS; undefined when none is configured. */
  readonly rembg: RembgBackend | undefined;
}

/**
 * Two jobs per process: one model session runs one inference at a time on all cores (PIXQ_ONNX_THREADS), and the
 * second job's decode, resize, mask clean-up and encoding overlap it instead of following it (measured in
 * docs/benchmarks.md). More slots would only queue for the session; a second session would double the memory.
 */
const DEFAULT_SLOTS = Math.min(2, os.availableParallelism());

export function createRemoveBackground(config: Config): RemoveBackgroundProcessor {
  const sessions = new SessionCache({
    provider: config.onnxProvider,
    threads: config.onnxThreads,
    idleMs: config.modelIdleMs,
    loadFailed: (file, err) =>
      modelUnavailable(
        `cannot load the model file ${file} (${err.message}); replace or delete it`,
        { path: file },
        err,
      ),
    released: dropImageCache,
  });
  const rembg = config.rembgServers.length > 0 ? new RembgBackend(config) : undefined;
  return {
    type: 'remove-background',
    optionsSchema: optionsWithDefaultBackend(config.removeBackgroundBackend),
    needsInput: true,
    concurrency: DEFAULT_SLOTS,
    validate: (options) => validate(options, rembg),
    run: (ctx) =>
      ctx.options.backend === 'rembg'
        ? removeRemotely(ctx, config, remoteBackend(ctx.options, rembg))
        : removeBackground(ctx, config, sessions),
    close: async () => {
      await Promise.all([sessions.closeAll(), rembg?.close()]);
    },
    get loadedModels() {
      return sessions.loaded;
    },
    modelPids: () => sessions.pids(),
    rembg,
  };
}

/** The schema with this deployment's default backend (PIXQ_REMOVE_BACKGROUND_BACKEND), filled in at submit time. */
function optionsWithDefaultBackend(backend: RemoveBackgroundBackend): typeof RemoveBackgroundOptions {
  if (backend === 'local') return RemoveBackgroundOptions;
  const properties = { ...RemoveBackgroundOptions.properties, backend: backendOption(backend) };
  return Type.Object(properties, { additionalProperties: false });
}

function validate(options: RemoveBackgroundOptions, rembg: RembgBackend | undefined): void {
  if (options.backend === 'rembg') remoteBackend(options, rembg);
  validateCutout(options);
}

/** The rembg pool for options that ask for it, or `validation_failed` when it cannot serve them. */
function remoteBackend(options: RemoveBackgroundOptions, rembg: RembgBackend | undefined): RembgBackend {
  if (!rembg) {
    const message = 'options.backend: "rembg" needs remote rembg servers, and none is configured (PIXQ_REMBG_URLS)';
    throw validationFailed(message, {
      errors: [{ path: 'options.backend', message: 'no rembg servers configured' }],
    });
  }
  if (options.model !== undefined && MODELS[options.model].source.kind !== 'rembg') {
    const offered = MODEL_NAMES.filter((name) => MODELS[name].source.kind === 'rembg').join(', ');
    const message = `options.model: ${options.model} runs only on the local backend; rembg servers offer ${offered}`;
    throw validationFailed(message, {
      errors: [{ path: 'options.model', message: 'not a rembg model' }],
    });
  }
  return rembg;
}

type Context = ProcessorContext<RemoveBackgroundOptions>;

async function removeBackground(ctx: Context, config: Config, sessions: SessionCache): Promise<ProcessorResult> {
  const { options } = ctx;
  const spec: ModelSpec = MODELS[options.model ?? DEFAULT_MODEL];

  enter(ctx, 'decode', 0);
  const opened = await openImage(ctx.input, config.maxPixels);
  // The output is the input's size, or a frame whose size the mask may decide (checked once it is known).
  if (!reframes(options)) checkOutputSize(opened, config.maxPixels);
  const pixels = await modelInput(opened.image, opened.width, opened.height, spec.size);

  enter(ctx, 'inference', 10);
  const started = performance.now();
  const { mask, cold } = await segment(pixels, spec, ctx, config, sessions);
  const inferenceMs = Math.round(performance.now() - started);

  enter(ctx, 'compose', 85);
  const { width, height } = opened;
  const cleaned = options.refineEdges ? refineMask(mask, spec.size, spec.size) : mask;
  const scaled = await scaleMask(cleaned, spec.size, width, height, options.refineEdges);
  const shaped = options.postProcessMask ? await postProcessMask(scaled, width, height) : scaled;
  const alpha = options.alphaMatting
    ? Buffer.from(matteAlpha(await rgbOf(opened.image), shaped, width, height, options.alphaMatting).buffer)
    : shaped;
  const photo = await withMask(opened.image, alpha, width, height);
  const cutout = await composeCutout(photo, width, height, options, config.maxPixels);
  return {
    outputs: [await store(ctx, cutout.image)],
    result: { model: spec.name, cold, inferenceMs, ...cutoutSummary(cutout, alpha) },
  };
}

/**
 * Empties libvips's operation cache (up to 50 MB of recent pixel buffers, 1 MP images here) and restores its
 * default limits: once the model has gone idle, the memory goes back too (measured: 64 MB above idle without).
 */
function dropImageCache(): void {
  sharp.cache(false);
  sharp.cache(true);
}

/** What a job's result says about its cut-out: the subject's box in the output, the mask's share, the crop. */
function cutoutSummary(cutout: Cutout, alpha: Uint8Array) {
  return {
    subjectFound: cutout.foreground !== undefined,
    foreground: cutout.foreground ?? null,
    foregroundShare: foregroundShare(alpha),
    ...(cutout.crop ? { crop: cutout.crop } : {}),
  };
}

async function store(ctx: Context, image: Sharp): Promise<ProcessorOutput> {
  enter(ctx, 'encode', 95);
  const { data, info } = await encode(image, ctx.options.format).toBuffer({ resolveWithObject: true });
  ctx.signal.throwIfAborted();
  const contentType = `image/${ctx.options.format}`;
  const ref = await ctx.blobs.put(data, contentType);
  return { ...ref, contentType, width: info.width, height: info.height };
}

/**
 * The same job on a remote rembg server: the options map to rembg's parameters (`model`, `om`, `ppm` for
 * refineEdges, `bgc`), the answer is vetted like an upload, and framing, shadow, decontamination and encoding
 * happen here as they do locally. rembg flattens onto `bgc` itself, but then its answer has no mask left to
 * work with, so when any of those is asked for the background is applied here, after them.
 */
async function removeRemotely(ctx: Context, config: Config, rembg: RembgBackend): Promise<ProcessorResult> {
  const { options } = ctx;
  const model = options.model ?? DEFAULT_REMBG_MODEL;
  enter(ctx, 'decode', 0);
  const opened = await openImage(ctx.input, config.maxPixels);
  const { width, height } = opened;
  // rembg flattens onto bgc itself only when nothing here needs the cut-out afterwards.
  const remoteColour =
    options.background === undefined || composesLocally(options)
      ? undefined
      : parseColour(options.background, 'options.background');

  enter(ctx, 'inference', 10);
  const started = performance.now();
  const {
    value: answer,
    server,
    failed,
  } = await rembg.remove(await uprightBytes(ctx.input!, opened), rembgParams(options, model, remoteColour), {
    signal: ctx.signal,
    maxBytes: answerLimit(width, height),
    check: (bytes) => readAnswer(bytes, width, height, options.onlyMask, config.maxPixels),
    log: ctx.log,
  });
  const requestMs = Math.round(performance.now() - started);

  enter(ctx, 'compose', 85);
  const raw = { width, height, channels: 4 as const };
  let composed: Sharp;
  let summary = {};
  // Once rembg has flattened the image its alpha is the colour's, not the subject's: there is no cut-out left.
  if (remoteColour) {
    composed = sharp(answer.rgba, { raw });
    if (remoteColour.alpha >= 1) composed = composed.removeAlpha();
  } else {
    const cutout = await composeCutout(answer.rgba, width, height, options, config.maxPixels);
    [composed, summary] = [cutout.image, cutoutSummary(cutout, answer.alpha)];
  }
  return {
    outputs: [await store(ctx, composed)],
    result: {
      backend: 'rembg',
      model,
      server,
      requestMs,
      ...(failed.length > 0 ? { failedServers: failed } : {}),
      ...summary,
    },
  };
}

function rembgParams(options: RemoveBackgroundOptions, model: ModelName, background: Colour | undefined): RembgParams {
  return {
    model,
    onlyMask: options.onlyMask,
    postProcessMask: options.refineEdges || options.postProcessMask,
    ...(options.alphaMatting && { alphaMatting: options.alphaMatting }),
    ...(background && {
      background: [background.r, background.g, background.b, Math.round(background.alpha * 255)] as const,
    }),
  };
}

/** rembg reads EXIF orientation or not depending on its version: it gets upright pixels, so either way agrees. */
async function uprightBytes(input: Buffer, opened: OpenedImage): Promise<{ bytes: Buffer; contentType: string }> {
  if (!opened.reoriented) return { bytes: input, contentType: 'application/octet-stream' };
  return { bytes: await opened.image.clone().png({ compressionLevel: 1 }).toBuffer(), contentType: 'image/png' };
}

/** An 8-bit RGBA PNG exceeds its raw pixels only by a filter byte per row and a few block headers. */
function answerLimit(width: number, height: number): number {
  return width * height * 4 + height + 1024 * 1024;
}

interface RemoteAnswer {
  /** The cut-out as raw RGBA (for onlyMask: the mask spread over RGB and as the alpha). */
  rgba: Buffer;
  /** The mask: the answer's alpha, or its grey band for onlyMask. */
  alpha: Buffer;
}

/** Checks an answer by its bytes like any upload, then that it is this input's cut-out (or mask) and decodes it. */
async function readAnswer(
  bytes: Buffer,
  width: number,
  height: number,
  onlyMask: boolean,
  maxPixels: number,
): Promise<RemoteAnswer> {
  const sniffed = await sniffImage(bytes, maxPixels).catch((err: Error) => {
    throw new Error(`answered something that is not a usable image (${err.message})`, { cause: err });
  });
  if (sniffed.width !== width || sniffed.height !== height) {
    throw new Error(`answered a ${sniffed.width}x${sniffed.height} image for a ${width}x${height} input`);
  }
  const image = sharp(bytes, { limitInputPixels: maxPixels });
  if (!onlyMask && !(await image.metadata()).hasAlpha) throw new Error('answered an image without an alpha channel');
  const rgba = await image.toColourspace('srgb').ensureAlpha().raw({ depth: 'uchar' }).toBuffer();
  if (rgba.length !== width * height * 4) {
    throw new Error(`answered pixels that decode to ${rgba.length} bytes, not RGBA`);
  }
  const alpha = Buffer.alloc(width * height);
  const band = onlyMask ? 0 : 3;
  for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[i * 4 + band];
  if (onlyMask) for (let i = 0; i < alpha.length; i++) rgba[i * 4 + 3] = alpha[i];
  return { rgba, alpha };
}

/** Runs the model on the prepared pixels; the mask comes back at model resolution. */
async function segment(pixels: Uint8Array, spec: ModelSpec, ctx: Context, config: Config, sessions: SessionCache) {
  const { signal } = ctx;
  const inference = sessions.use(
    spec.name,
    () => locateModel(spec, config, ctx.log),
    (host) => host.run({ [host.inputNames[0]]: toInputTensor(pixels, spec) }, host.outputNames[0], signal),
  );
  // Loading a model is shared with other jobs and runs on; this job stops waiting the moment it is aborted.
  const { value: output, cold } = await raceAbort(inference, signal);
  return { mask: toMask(output, spec), cold };
}

/** Checks for abort before starting a stage, then reports it. */
function enter(ctx: Context, stage: string, percent: number): void {
  ctx.signal.throwIfAborted();
  ctx.progress({ percent, stage });
}

/** The picture as interleaved RGB bytes at full size: the matting's guide. */
async function rgbOf(image: Sharp): Promise<Uint8Array> {
  const { data, info } = await image
    .clone()
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels, expected 3`);
  return data;
}

function encode(image: Sharp, format: RemoveBackgroundOptions['format']): Sharp {
  // zlib level 4 instead of 6: 45 instead of 83 ms for a 1 MP cut-out, 3 % larger (measured, docs/processors.md).
  if (format === 'png') return image.png({ compressionLevel: 4 });
  return format === 'webp' ? image.webp({ quality: 90, alphaQuality: 100 }) : image.jpeg({ quality: 90 });
}

function foregroundShare(alpha: Uint8Array): number {
  let count = 0;
  for (const a of alpha) if (a >= 128) count++;
  return Math.round((count / Math.max(1, alpha.length)) * 1000) / 1000;
}
