import sharp, { type Sharp } from 'sharp';
import { Type, type Static } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { validationFailed } from '../errors.js';
import { afterStopping, throwIfAborted } from './abort.js';
import { parseColour, type Colour } from './colour.js';
import { defaultFormat, encodeImage, OutputFormat, type EncodedImage } from './encode.js';
import { openImage, type OpenedImage } from './image.js';
import { checkOutputSize, MAX_OUTPUT_SIDE, type Size } from './output-size.js';
import type { Processor, ProcessorContext, ProcessorResult } from './types.js';

const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
const POSITIONS: Record<string, string> = {
  centre: 'centre',
  center: 'centre',
  top: 'top',
  bottom: 'bottom',
  left: 'left',
  right: 'right',
  'top-left': 'left top',
  'top-right': 'right top',
  'bottom-left': 'left bottom',
  'bottom-right': 'right bottom',
  entropy: 'entropy',
  attention: 'attention',
};

export const transformOptionsSchema = Type.Object(
  {
    resize: Type.Optional(
      Type.Object(
        {
          width: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_OUTPUT_SIDE })),
          height: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_OUTPUT_SIDE })),
          // sharp's own default: a resize naming width and height gives exactly that size. With one side
          // given, the other follows the aspect ratio whatever the fit.
          fit: Type.Union(
            FITS.map((f) => Type.Literal(f)),
            { default: 'cover' },
          ),
          position: Type.Optional(Type.Union(Object.keys(POSITIONS).map((p) => Type.Literal(p)))),
          withoutEnlargement: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
    format: Type.Optional(OutputFormat),
    quality: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    background: Type.Optional(Type.String({ maxLength: 64 })),
    rotate: Type.Optional(Type.Number({ minimum: -360, maximum: 360 })),
    trim: Type.Optional(Type.Union([Type.Boolean(), Type.Number({ minimum: 1, maximum: 255 })])),
  },
  { additionalProperties: false },
);
export type TransformOptions = Static<typeof transformOptionsSchema>;

const TRANSPARENT: Colour = { r: 0, g: 0, b: 0, alpha: 0 };

const DEFAULT_TRIM_THRESHOLD = 10;

export function createTransform(config: Config): Processor<typeof transformOptionsSchema> {
  return {
    type: 'transform',
    optionsSchema: transformOptionsSchema,
    needsInput: true,
    validate: validateTransform,
    run: (ctx) => runTransform(ctx, config),
  };
}

function validateTransform(options: TransformOptions): void {
  if (options.background !== undefined) parseColour(options.background, 'options.background');
  const resize = options.resize;
  if (resize && resize.width === undefined && resize.height === undefined) {
    throw validationFailed('options.resize: give width, height or both');
  }
  if (resize?.position && resize.fit !== 'cover' && resize.fit !== 'contain') {
    throw validationFailed('options.resize.position: only applies when fit is cover or contain');
  }
  if ((resize?.position === 'entropy' || resize?.position === 'attention') && resize.fit !== 'cover') {
    throw validationFailed(`options.resize.position: ${resize.position} only applies when fit is cover`);
  }
  const quarterTurn = options.rotate === undefined || options.rotate % 90 === 0;
  if (!quarterTurn && options.background === undefined) {
    throw validationFailed('options.rotate: an angle that is not a multiple of 90 needs options.background');
  }
}

async function runTransform(ctx: ProcessorContext<TransformOptions>, config: Config): Promise<ProcessorResult> {
  throwIfAborted(ctx.signal);
  ctx.progress({ percent: 5, stage: 'decode' });
  const opened = await openImage(ctx.input, config.maxPixels);
  const meta = await opened.image.metadata();
  throwIfAborted(ctx.signal);
  ctx.progress({ percent: 40, stage: 'transform' });
  const input = { ...opened, format: meta.format, hasAlpha: meta.hasAlpha ?? false };
  const encoded = await afterStopping(transformImage(input, ctx.options, config.maxPixels, ctx.signal), ctx.signal);
  throwIfAborted(ctx.signal);
  ctx.progress({ percent: 90, stage: 'store' });
  const ref = await ctx.blobs.put(encoded.data, encoded.contentType);
  ctx.progress({ percent: 100, stage: 'done' });
  return {
    outputs: [{ ...ref, contentType: encoded.contentType, width: encoded.width, height: encoded.height }],
    result: { width: encoded.width, height: encoded.height, format: encoded.format },
  };
}

interface TransformInput extends OpenedImage {
  format: string | undefined;
  hasAlpha: boolean;
}

/**
 * Applies the transform options to an upright sRGB image. Trim runs in its own pass first because sharp orders
 * the operations of one pipeline itself, and a trim after a resize would cut the letterbox it just added. The
 * output's size is computed and bounded before the rotation and the resize (after the trim, which only
 * shrinks the image and decides the size the resize sees). An abort stops it between its passes.
 */
export async function transformImage(
  input: TransformInput,
  options: TransformOptions,
  maxPixels: number,
  signal: AbortSignal,
): Promise<EncodedImage> {
  let image = input.image.clone();
  let size: Size = input;
  if (options.trim !== undefined && options.trim !== false) ({ image, size } = await trimmed(image, options.trim));
  throwIfAborted(signal);
  checkOutputSize(outputSize(size, options), maxPixels);
  const background = options.background === undefined ? undefined : parseColour(options.background);
  const fill = background ?? TRANSPARENT;
  if (options.rotate !== undefined && options.rotate % 360 !== 0) {
    image = await rotated(image, options.rotate, fill);
    throwIfAborted(signal);
  }
  if (options.resize) image = resized(image, options.resize, fill);
  const addsTransparency = fill.alpha < 1 && (options.resize?.fit === 'contain' || (options.rotate ?? 0) % 90 !== 0);
  const flattenOnto = background && background.alpha === 1 ? background : undefined;
  const hasAlpha = !flattenOnto && (input.hasAlpha || addsTransparency);
  const format = options.format ?? defaultFormat(input.format, hasAlpha);
  return encodeImage(image, { format, quality: options.quality, flattenOnto, hasAlpha });
}

async function trimmed(image: Sharp, trim: true | number): Promise<{ image: Sharp; size: Size }> {
  const threshold = trim === true ? DEFAULT_TRIM_THRESHOLD : trim;
  const { data, info } = await image.trim({ threshold }).raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  return { image: sharp(data, { raw: { width, height, channels } }), size: { width, height } };
}

/** The size rotate and resize will give an image of `size`, as sharp computes it (to within rounding). */
export function outputSize(size: Size, options: TransformOptions): Size {
  const turned = options.rotate === undefined ? size : rotatedSize(size, options.rotate);
  return options.resize ? resizedSize(turned, options.resize) : turned;
}

function rotatedSize({ width, height }: Size, angle: number): Size {
  const radians = (angle * Math.PI) / 180;
  const cos = Math.abs(Math.cos(radians));
  const sin = Math.abs(Math.sin(radians));
  // The rotated bounding box, rounded up; the tolerance keeps float error off quarter turns.
  const side = (length: number) => Math.ceil(length - 1e-6);
  return { width: side(width * cos + height * sin), height: side(width * sin + height * cos) };
}

/**
 * sharp's resize sizes. Both sides give the box for cover, contain and fill and a box-fitting scale for inside
 * and outside; one side keeps the aspect ratio, except that fill stretches only that side. withoutEnlargement
 * never grows a side past the input, except that contain still letterboxes to the sides it was given.
 */
function resizedSize(input: Size, resize: NonNullable<TransformOptions['resize']>): Size {
  const { width, height, fit } = resize;
  const target = targetSize(input, resize);
  if (!resize.withoutEnlargement) return target;
  const shrunk = { width: Math.min(target.width, input.width), height: Math.min(target.height, input.height) };
  return fit === 'contain' ? { width: width ?? shrunk.width, height: height ?? shrunk.height } : shrunk;
}

function targetSize(input: Size, { width, height, fit }: NonNullable<TransformOptions['resize']>): Size {
  const scaled = (scale: number) => ({
    width: Math.max(1, Math.round(input.width * scale)),
    height: Math.max(1, Math.round(input.height * scale)),
  });
  if (width !== undefined && height !== undefined) {
    const scales = [width / input.width, height / input.height];
    if (fit === 'inside') return scaled(Math.min(...scales));
    if (fit === 'outside') return scaled(Math.max(...scales));
    return { width, height };
  }
  if (fit === 'fill') return { width: width ?? input.width, height: height ?? input.height };
  return width !== undefined ? scaled(width / input.width) : scaled(height! / input.height);
}

/** A rotation gets its own pass so that a later resize measures the rotated canvas. */
async function rotated(image: Sharp, angle: number, fill: Colour): Promise<Sharp> {
  const exposesCorners = angle % 90 !== 0 && fill.alpha < 1;
  const { data, info } = await (exposesCorners ? image.ensureAlpha() : image)
    .rotate(angle, { background: fill })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
}

function resized(image: Sharp, resize: NonNullable<TransformOptions['resize']>, fill: Colour): Sharp {
  const contain = resize.fit === 'contain';
  return (contain && fill.alpha < 1 ? image.ensureAlpha() : image).resize({
    width: resize.width,
    height: resize.height,
    fit: resize.fit,
    position: resize.position ? POSITIONS[resize.position] : undefined,
    withoutEnlargement: resize.withoutEnlargement,
    background: fill,
  });
}
