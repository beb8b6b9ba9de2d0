import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import sharp, { type Sharp } from 'sharp';
import type { Config } from '../config.js';
import { parseColour, type Colour } from './colour.js';
import { openImage } from './image.js';
import { DEFAULT_MODEL, MODEL_NAMES, MODELS, type ModelName, type ModelSpec } from './models/catalog.js';
import { locateModel } from './models/locate.js';
import { modelUnavailable } from './models/model-files.js';
import { boundingBox, growBox, postProcessMask, refineMask, scaleMask } from './models/mask.js';
import { matteAlpha } from './models/matting.js';
import { raceAbort } from './abort.js';
import { resizeCentred } from './models/resample.js';
import { SessionCache } from './models/sessions.js';
import { toInputTensor, toMask } from './models/tensors.js';
import { validationFailed } from '../errors.js';
import type { Processor, ProcessorContext, ProcessorResult } from './types.js';

const ModelOption = Type.Union(
  MODEL_NAMES.map((name) => Type.Literal(name)),
  { default: DEFAULT_MODEL, description: 'Segmentation model; rembg models must be installed or downloadable.' },
) as unknown as TUnion<TLiteral<ModelName>[]>;

const Level = (description: string, fallback: number) => Type.Integer({ minimum: 0, maximum: 255, default: fallback, description });

const AlphaMattingOptions = Type.Object(
  {
    foregroundThreshold: Level('Mask values above this are sure subject (rembg af).', 240),
    backgroundThreshold: Level('Mask values below this are sure background (rembg ab).', 10),
    erodeSize: Type.Integer({ minimum: 0, maximum: 100, default: 10, description: 'Erosion of both sure regions in pixels (rembg ae).' }),
  },
  { additionalProperties: false, description: 'Refine the edge with a trimap and a colour guided filter (soft hair, fur, blur).' },
);

export const RemoveBackgroundOptions = Type.Object(
  {
    model: ModelOption,
    format: Type.Union([Type.Literal('png'), Type.Literal('webp')], { default: 'png' }),
    background: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Flatten onto this colour; omit for transparency.' }),
    ),
    onlyMask: Type.Boolean({ default: false, description: 'Return the greyscale alpha mask instead of the cut-out.' }),
    crop: Type.Boolean({ default: false, description: 'Trim the output to the subject.' }),
    cropMargin: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 0,
      description: "With crop: margin on each side, in percent of the subject box's longer side.",
    }),
    refineEdges: Type.Boolean({
      default: true,
      description: 'Drop small disconnected blobs and haze, and feather the upscaled edge.',
    }),
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
  /** Closes the loaded model sessions (their worker threads); for shutdown and tests. */
  close(): Promise<void>;
  /** Models whose sessions are loaded or loading now (released after PIXQ_MODEL_IDLE_MS unused). */
  readonly loadedModels: string[];
}

// Alpha at or above this counts as subject when cropping: it includes the soft edge, not the haze.
const CROP_THRESHOLD = 16;

export function createRemoveBackground(config: Config): RemoveBackgroundProcessor {
  const sessions = new SessionCache({
    provider: config.onnxProvider,
    threads: config.onnxThreads,
    idleMs: config.modelIdleMs,
    loadFailed: (file, err) =>
      modelUnavailable(`cannot load the model file ${file} (${err.message}); replace or delete it`, { path: file }, err),
  });
  return {
    type: 'remove-background',
    optionsSchema: RemoveBackgroundOptions,
    needsInput: true,
    validate,
    run: (ctx) => removeBackground(ctx, config, sessions),
    close: () => sessions.closeAll(),
    get loadedModels() {
      return sessions.loaded;
    },
  };
}

function validate(options: RemoveBackgroundOptions): void {
  if (options.background === undefined) return;
  if (options.onlyMask) {
    throw validationFailed('options.background: cannot be combined with onlyMask (a mask has no background)', {
      errors: [{ path: 'options.background', message: 'not allowed with onlyMask' }],
    });
  }
  parseColour(options.background, 'options.background');
}

type Context = ProcessorContext<RemoveBackgroundOptions>;

async function removeBackground(ctx: Context, config: Config, sessions: SessionCache): Promise<ProcessorResult> {
  const { options } = ctx;
  const spec: ModelSpec = MODELS[options.model];

  enter(ctx, 'decode', 0);
  const opened = await openImage(ctx.input, config.maxPixels);
  const pixels = await modelInput(opened.image, opened.width, opened.height, spec.size);

  enter(ctx, 'inference', 10);
  const started = performance.now();
  const { mask, cold } = await segment(pixels, spec, ctx.signal, config, sessions);
  const inferenceMs = Math.round(performance.now() - started);

  enter(ctx, 'compose', 85);
  const { width, height } = opened;
  const cleaned = options.refineEdges ? refineMask(mask, spec.size, spec.size) : mask;
  const scaled = await scaleMask(cleaned, spec.size, width, height, options.refineEdges);
  const shaped = options.postProcessMask ? await postProcessMask(scaled, width, height) : scaled;
  const alpha = options.alphaMatting
    ? Buffer.from(matteAlpha(await rgbOf(opened.image), shaped, width, height, options.alphaMatting).buffer)
    : shaped;
  const subject = boundingBox(alpha, width, height, CROP_THRESHOLD);
  const box = options.crop && subject ? growBox(subject, options.cropMargin, width, height) : undefined;
  const composed = options.onlyMask
    ? maskImage(alpha, width, height)
    : await cutOut(opened.image, alpha, width, height, options);

  enter(ctx, 'encode', 95);
  const framed = box ? composed.extract(box) : composed;
  const { data, info } = await encode(framed, options.format).toBuffer({ resolveWithObject: true });
  ctx.signal.throwIfAborted();
  const contentType = `image/${options.format}`;
  const ref = await ctx.blobs.put(data, contentType);
  return {
    outputs: [{ ...ref, contentType, width: info.width, height: info.height }],
    result: {
      model: spec.name,
      cold,
      inferenceMs,
      subjectFound: subject !== undefined,
      foreground: foregroundShare(alpha),
      ...(box ? { crop: box } : {}),
    },
  };
}

/** Runs the model on the prepared pixels; the mask comes back at model resolution. */
async function segment(pixels: Uint8Array, spec: ModelSpec, signal: AbortSignal, config: Config, sessions: SessionCache) {
  const inference = sessions.use(
    spec.name,
    () => locateModel(spec, config),
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

/** The image squashed to the model's square input, as RGB bytes; transparent areas are seen on white. */
async function modelInput(image: Sharp, width: number, height: number, size: number): Promise<Uint8Array> {
  const flat = image.clone().flatten({ background: '#ffffff' }).toColourspace('srgb');
  const { data, channels } = await resizeCentred(flat, { width, height }, { width: size, height: size }, 'lanczos3');
  if (channels !== 3) throw new Error(`model input has ${channels} channels, expected 3`);
  return data;
}

/** The picture as interleaved RGB bytes at full size: the matting's guide. */
async function rgbOf(image: Sharp): Promise<Uint8Array> {
  const { data, info } = await image.clone().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded ${info.channels} channels, expected 3`);
  return data;
}

function maskImage(alpha: Buffer, width: number, height: number): Sharp {
  // Without it sharp writes the single band out as RGB.
  return sharp(alpha, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
}

/** The image with the mask as its alpha (kept transparency of the input multiplies in), optionally flattened. */
async function cutOut(
  image: Sharp,
  alpha: Buffer,
  width: number,
  height: number,
  options: RemoveBackgroundOptions,
): Promise<Sharp> {
  const { data: rgba, info } = await image.clone().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 4 || info.width !== width || info.height !== height) {
    throw new Error(`decoded ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x4`);
  }
  for (let i = 0, p = 3; i < alpha.length; i++, p += 4) rgba[p] = (rgba[p] * alpha[i] + 127) / 255;
  const raw = { width, height, channels: 4 as const };
  if (options.background === undefined) return sharp(rgba, { raw });
  return onBackground(rgba, raw, parseColour(options.background, 'options.background'));
}

type RawRgba = { width: number; height: number; channels: 4 };

async function onBackground(rgba: Buffer, raw: RawRgba, colour: Colour): Promise<Sharp> {
  if (colour.alpha >= 1) return sharp(rgba, { raw }).flatten({ background: colour }).removeAlpha();
  // A see-through background colour: composite so that the result keeps an alpha channel.
  const flattened = await sharp({ create: { ...raw, background: colour } })
    .composite([{ input: rgba, raw }])
    .raw()
    .toBuffer();
  return sharp(flattened, { raw });
}

function encode(image: Sharp, format: 'png' | 'webp'): Sharp {
  return format === 'png' ? image.png({ compressionLevel: 6 }) : image.webp({ quality: 90, alphaQuality: 100 });
}

function foregroundShare(alpha: Buffer): number {
  let count = 0;
  for (const a of alpha) if (a >= 128) count++;
  return Math.round((count / Math.max(1, alpha.length)) * 1000) / 1000;
}

