import sharp, { type Sharp } from 'sharp';
import { Type, type Static } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { PixqError, validationFailed } from '../errors.js';
import { fitToImage, idealCrop, parseAspect, planCut, toPixels, type Region } from './faces/crop.js';
import type { Face } from './faces/detector.js';
import { openImage, type OpenedImage } from './image.js';
import { afterStopping, throwIfAborted } from './abort.js';
import { OutputFormat, defaultFormat, encodeImage, type EncodedImage } from './encode.js';
import { checkOutputSize, type Size } from './output-size.js';
import type { Processor, ProcessorContext, ProcessorOutput, ProcessorResult } from './types.js';

/** `select: all` writes at most this many crops (largest faces first), so a crowd photo cannot flood the store. */
export const MAX_FACES = 20;
const MAX_SIDE = 8192;

export const faceCropOptionsSchema = Type.Object(
  {
    aspect: Type.String({
      pattern: '^[1-9][0-9]{0,3}:[1-9][0-9]{0,3}$',
      default: '3:4',
      description: 'Crop aspect ratio W:H; 35:45 for passport photos',
    }),
    size: Type.Optional(
      Type.Union([
        Type.Integer({ minimum: 16, maximum: MAX_SIDE, description: 'Output width; height follows the aspect' }),
        Type.Object(
          {
            width: Type.Integer({ minimum: 16, maximum: MAX_SIDE }),
            height: Type.Integer({ minimum: 16, maximum: MAX_SIDE }),
          },
          { additionalProperties: false, description: 'Exact output size; its ratio replaces aspect' },
        ),
      ]),
    ),
    margin: Type.Number({
      minimum: 0,
      maximum: 3,
      default: 0.5,
      description: 'Room around the face box, in face-box sizes: 1.5x this above, 0.5x below and on each side',
    }),
    select: Type.Union([Type.Literal('largest'), Type.Literal('all'), Type.Literal('single')], { default: 'largest' }),
    format: Type.Optional(OutputFormat),
    quality: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);
export type FaceCropOptions = Static<typeof faceCropOptionsSchema>;

export const faceErrors = {
  noFace: () => new PixqError('no_face_detected', 'no face was found in the image', { status: 422, retryable: false }),
  multipleFaces: (count: number) =>
    new PixqError('multiple_faces', `${count} faces were found; select "single" needs exactly one`, {
      status: 422,
      retryable: false,
      details: { faces: count },
    }),
};

export function createFaceCrop(config: Config): Processor<typeof faceCropOptionsSchema> {
  return {
    type: 'face-crop',
    optionsSchema: faceCropOptionsSchema,
    needsInput: true,
    validate: validateFaceCrop,
    run: (ctx) => runFaceCrop(ctx, config),
  };
}

function validateFaceCrop(options: FaceCropOptions): void {
  const ratio = parseAspect(options.aspect);
  if (ratio < 0.1 || ratio > 10) throw validationFailed('options.aspect: must be between 1:10 and 10:1');
}

async function runFaceCrop(ctx: ProcessorContext<FaceCropOptions>, config: Config): Promise<ProcessorResult> {
  throwIfAborted(ctx.signal);
  ctx.progress({ percent: 5, stage: 'decode' });
  const opened = await openImage(ctx.input, config.maxPixels);
  // An explicit size is known before detection; a crop's own size is checked per face before it is cut.
  if (ctx.options.size !== undefined) {
    checkOutputSize(outputSize(ctx.options, opened, outputAspect(ctx.options)), config.maxPixels);
  }
  const meta = await opened.image.metadata();
  throwIfAborted(ctx.signal);
  ctx.progress({ percent: 20, stage: 'detect' });
  // TensorFlow.js costs about 55 MB of memory; a process that never crops a face never loads it.
  const { detectFaces } = await import('./faces/detector.js');
  const detected = await afterStopping(detectFaces(opened.image, opened.width, opened.height), ctx.signal);
  const chosen = chooseFaces(detected, ctx.options.select);
  const outputs: ProcessorOutput[] = [];
  const faces: Record<string, unknown>[] = [];
  for (const [i, face] of chosen.entries()) {
    throwIfAborted(ctx.signal);
    ctx.progress({ percent: 60 + Math.round((30 * i) / chosen.length), stage: 'crop' });
    const { encoded, crop } = await afterStopping(
      cropFace(opened, face, meta, ctx.options, config.maxPixels),
      ctx.signal,
    );
    throwIfAborted(ctx.signal);
    const ref = await ctx.blobs.put(encoded.data, encoded.contentType);
    outputs.push({ ...ref, contentType: encoded.contentType, width: encoded.width, height: encoded.height });
    faces.push({ box: face.box, score: face.score, crop });
  }
  ctx.progress({ percent: 100, stage: 'done' });
  return { outputs, result: { faces, detected: detected.length } };
}

/** Faces arrive largest first. */
function chooseFaces(faces: Face[], select: FaceCropOptions['select']): Face[] {
  if (faces.length === 0) throw faceErrors.noFace();
  if (select === 'single' && faces.length > 1) throw faceErrors.multipleFaces(faces.length);
  return select === 'all' ? faces.slice(0, MAX_FACES) : [faces[0]];
}

interface CropMeta {
  format?: string;
  hasAlpha?: boolean;
}

async function cropFace(
  opened: OpenedImage,
  face: Face,
  meta: CropMeta,
  options: FaceCropOptions,
  maxPixels: number,
): Promise<{ encoded: EncodedImage; crop: Region }> {
  const aspect = outputAspect(options);
  const image = { width: opened.width, height: opened.height };
  const crop = toPixels(fitToImage(idealCrop(face.box, aspect, options.margin), face.box, image), aspect);
  const size = outputSize(options, crop, aspect);
  checkOutputSize(size, maxPixels);
  const hasAlpha = meta.hasAlpha ?? false;
  let cut = await cutWithPadding(opened.image, crop, image, hasAlpha);
  if (size.width !== crop.width || size.height !== crop.height) {
    cut = cut.resize(size.width, size.height, { fit: 'fill' });
  }
  const format = options.format ?? defaultFormat(meta.format, hasAlpha);
  const encoded = await encodeImage(cut, { format, quality: options.quality, hasAlpha });
  return { encoded, crop };
}

/**
 * Cuts the crop out of the image; the part past the image edges is padded transparent when the image has
 * alpha (a later background step fills it) and otherwise by repeating the edge pixels, which continues a
 * plain backdrop without a visible band.
 */
async function cutWithPadding(
  source: Sharp,
  crop: Region,
  image: { width: number; height: number },
  hasAlpha: boolean,
): Promise<Sharp> {
  const plan = planCut(crop, image);
  const { x, y, width, height } = plan.extract;
  const extracted = source.clone().extract({ left: x, top: y, width, height });
  const { top, bottom, left, right } = plan.pad;
  if (top + bottom + left + right === 0) return extracted;
  // extend() must see the extracted pixels, not the full image, so the cut is materialised first.
  const { data, info } = await extracted.raw().toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } }).extend({
    top,
    bottom,
    left,
    right,
    ...(hasAlpha ? { background: { r: 0, g: 0, b: 0, alpha: 0 } } : { extendWith: 'copy' as const }),
  });
}

function outputAspect(options: FaceCropOptions): number {
  if (typeof options.size === 'object') return options.size.width / options.size.height;
  return parseAspect(options.aspect);
}

/** The output's size: the one asked for, else the crop's own. */
function outputSize(options: FaceCropOptions, crop: Size, aspect: number): Size {
  if (typeof options.size === 'object') return options.size;
  if (typeof options.size === 'number')
    return { width: options.size, height: Math.max(1, Math.round(options.size / aspect)) };
  return { width: crop.width, height: crop.height };
}
