import type { Sharp } from 'sharp';
import { Type, type Static } from '@sinclair/typebox';
import type { Colour } from './colour.js';

/** Output formats every image processor offers. */
export const OutputFormat = Type.Union(
  [Type.Literal('png'), Type.Literal('jpeg'), Type.Literal('webp'), Type.Literal('avif')],
  { description: 'Output format; default: the input family (jpeg, png, webp, avif), png when the result has alpha' },
);
export type OutputFormatName = Static<typeof OutputFormat>;

const MIME: Record<OutputFormatName, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  avif: 'image/avif',
};

const WHITE: Colour = { r: 255, g: 255, b: 255, alpha: 1 };

export interface EncodedImage {
  data: Buffer;
  contentType: string;
  format: OutputFormatName;
  width: number;
  height: number;
}

/** The input's own family when it has one we write, png when the result keeps alpha that jpeg cannot hold. */
export function defaultFormat(inputFormat: string | undefined, hasAlpha: boolean): OutputFormatName {
  const family: OutputFormatName | undefined =
    inputFormat === 'jpeg' || inputFormat === 'jpg'
      ? 'jpeg'
      : inputFormat === 'webp'
        ? 'webp'
        : inputFormat === 'heif' || inputFormat === 'avif'
          ? 'avif'
          : inputFormat === 'png'
            ? 'png'
            : undefined;
  if (!family) return 'png';
  return family === 'jpeg' && hasAlpha ? 'png' : family;
}

export interface EncodeOptions {
  format: OutputFormatName;
  quality?: number;
  /** Opaque colour to composite transparent pixels onto. */
  flattenOnto?: Colour;
  /** Whether the image may carry transparency; jpeg output then flattens onto white. */
  hasAlpha: boolean;
}

/**
 * Encodes in sRGB with an sRGB ICC profile and no other metadata: EXIF (GPS, camera serials) never leaves the
 * service, and colour-managed viewers still render the colours as intended.
 */
export async function encodeImage(image: Sharp, opts: EncodeOptions): Promise<EncodedImage> {
  let out = image;
  const flatten = opts.flattenOnto ?? (opts.format === 'jpeg' && opts.hasAlpha ? WHITE : undefined);
  if (flatten) out = out.flatten({ background: flatten });
  out = out.toColourspace('srgb').withIccProfile('srgb');
  const quality = opts.quality;
  if (opts.format === 'jpeg') out = out.jpeg({ quality: quality ?? 85, mozjpeg: false });
  else if (opts.format === 'webp') out = out.webp({ quality: quality ?? 85 });
  else if (opts.format === 'avif') out = out.avif({ quality: quality ?? 55, effort: 2 });
  else out = out.png({ compressionLevel: 6 });
  const { data, info } = await out.toBuffer({ resolveWithObject: true });
  return { data, contentType: MIME[opts.format], format: opts.format, width: info.width, height: info.height };
}
