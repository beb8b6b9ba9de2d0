import sharp, { type Sharp } from 'sharp';
import { parseColour, type Colour } from '../colour.js';
import type { Box } from '../models/mask.js';
import { checkOutputSize } from '../output-size.js';
import { decontaminate } from './decontaminate.js';
import { placeOnCanvas, planFrame, reframes, subjectBox, validateFraming, type FramingOptions } from './framing.js';
import { addShadow, type ShadowOptions } from './shadow.js';
import { validationFailed } from '../../errors.js';

/**
 * From a mask to the image remove-background stores, in this order: the cut-out's colours cleaned in soft
 * edges (decontaminate.ts), the subject framed on its canvas (framing.ts), a shadow behind it (shadow.ts), then
 * the background colour, or the mask alone. One entry, `composeCutout`, for the local model and rembg servers.
 */
export interface CutoutOptions extends FramingOptions {
  onlyMask: boolean;
  background?: string;
  format: 'png' | 'webp' | 'jpeg';
  shadow?: ShadowOptions;
  decontaminate: boolean;
}

const WHITE: Colour = { r: 255, g: 255, b: 255, alpha: 1 };

/** Checks of the cut-out options beyond their schema, at submit time. */
export function validateCutout(options: CutoutOptions): void {
  validateFraming(options);
  if (options.background !== undefined) parseColour(options.background, 'options.background');
  const maskOnly = (field: string) =>
    validationFailed(`options.${field}: cannot be combined with onlyMask (a mask has no ${field})`, {
      errors: [{ path: `options.${field}`, message: 'not allowed with onlyMask' }],
    });
  if (options.onlyMask && options.background !== undefined) throw maskOnly('background');
  if (options.onlyMask && options.shadow !== undefined) throw maskOnly('shadow');
}

/** Whether anything happens after a rembg server's own flattening would: then pixq asks it for the cut-out. */
export function composesLocally(options: CutoutOptions): boolean {
  return reframes(options) || options.shadow !== undefined || options.decontaminate || options.format === 'jpeg';
}

/** The decoded photo with `alpha` multiplied into its own (an input's transparency is kept): RGBA bytes. */
export async function withMask(image: Sharp, alpha: Uint8Array, width: number, height: number): Promise<Buffer> {
  const { data: rgba, info } = await image.clone().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 4 || info.width !== width || info.height !== height) {
    throw new Error(`decoded ${info.width}x${info.height}x${info.channels}, expected ${width}x${height}x4`);
  }
  for (let i = 0, p = 3; i < alpha.length; i++, p += 4) rgba[p] = (rgba[p] * alpha[i] + 127) / 255;
  return rgba;
}

export interface Cutout {
  image: Sharp;
  /** The subject's box in the output; undefined when no subject was found. */
  foreground: Box | undefined;
  /** With crop: the region of the photo the output shows (may reach past the photo's edges). */
  crop: Box | undefined;
}

/**
 * The output image for a cut-out: `rgba` is the photo's colours with the cut-out's alpha (see withMask); it is
 * changed in place. Throws `output_too_large` for a canvas beyond PIXQ_MAX_PIXELS before any pixel work on it.
 */
export async function composeCutout(
  rgba: Buffer,
  width: number,
  height: number,
  options: CutoutOptions,
  maxPixels: number,
): Promise<Cutout> {
  const alpha = alphaPlane(rgba);
  const frame = planFrame(subjectBox(alpha, width, height), { width, height }, options);
  checkOutputSize(frame.canvas, maxPixels);
  if (options.decontaminate && !options.onlyMask) decontaminate(rgba, width, height);
  const canvas = reframes(options) ? await placeOnCanvas(rgba, { width, height }, frame) : rgba;
  if (options.shadow && frame.foreground) await addShadow(canvas, frame.canvas, frame.foreground, options.shadow);
  const raw = { ...frame.canvas, channels: 4 as const };
  const colour =
    options.background !== undefined
      ? parseColour(options.background, 'options.background')
      : options.format === 'jpeg'
        ? WHITE
        : undefined;
  let image: Sharp;
  if (options.onlyMask) image = maskImage(alphaPlane(canvas), frame.canvas.width, frame.canvas.height);
  else if (colour) image = await onBackground(canvas, raw, colour);
  else image = sharp(canvas, { raw });
  return { image, foreground: frame.foreground, crop: frame.crop };
}

function alphaPlane(rgba: Uint8Array): Buffer {
  const alpha = Buffer.alloc(rgba.length / 4);
  for (let i = 0; i < alpha.length; i++) alpha[i] = rgba[i * 4 + 3];
  return alpha;
}

export function maskImage(alpha: Buffer, width: number, height: number): Sharp {
  // Without it sharp writes the single band out as RGB.
  return sharp(alpha, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
}

type RawRgba = { width: number; height: number; channels: 4 };

export async function onBackground(rgba: Buffer, raw: RawRgba, colour: Colour): Promise<Sharp> {
  if (colour.alpha >= 1) return sharp(rgba, { raw }).flatten({ background: colour }).removeAlpha();
  // A see-through background colour: composite so that the result keeps an alpha channel.
  const flattened = await sharp({ create: { ...raw, background: colour } })
    .composite([{ input: rgba, raw }])
    .raw()
    .toBuffer();
  return sharp(flattened, { raw });
}
