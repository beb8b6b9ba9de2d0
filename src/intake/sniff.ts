import { fileTypeFromBuffer } from 'file-type';
import sharp, { type Metadata } from 'sharp';
import { jobErrors, PixqError } from '../errors.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'tiff' | 'gif';

export interface SniffedImage {
  contentType: string;
  format: ImageFormat;
  /** Upright size, i.e. after EXIF orientation, as processors will see it. */
  width: number;
  height: number;
  /** Size of the encoded input in bytes. */
  bytes: number;
}

/** Accepted MIME types, by their content, with the format name sharp reports for each. */
const ACCEPTED: Record<string, { format: ImageFormat; sharpFormat: string }> = {
  'image/jpeg': { format: 'jpeg', sharpFormat: 'jpeg' },
  'image/png': { format: 'png', sharpFormat: 'png' },
  'image/webp': { format: 'webp', sharpFormat: 'webp' },
  'image/avif': { format: 'avif', sharpFormat: 'heif' },
  'image/tiff': { format: 'tiff', sharpFormat: 'tiff' },
  'image/gif': { format: 'gif', sharpFormat: 'gif' },
};

export const ACCEPTED_CONTENT_TYPES: readonly string[] = Object.keys(ACCEPTED);

/** Side of the probe decode; small enough that JPEG and WebP decode at reduced scale (shrink-on-load). */
const PROBE_SIZE = 64;

function unsupported(detected: string | undefined): PixqError {
  return new PixqError(
    'unsupported_media_type',
    `${detected ? `${detected} is` : 'the content is'} not a supported image type (${ACCEPTED_CONTENT_TYPES.join(', ')})`,
    { status: 415, details: { detected: detected ?? null, accepted: ACCEPTED_CONTENT_TYPES } },
  );
}

/**
 * Decides what an upload really is, from its bytes only (the filename and the declared type are ignored),
 * and refuses what processors could not safely open:
 * - a type other than JPEG, PNG, WebP, AVIF, TIFF or GIF: `unsupported_media_type` (415);
 * - more than `maxPixels` pixels, judged from the header alone, so a decompression bomb costs nothing: `invalid_image` (422);
 * - a truncated or corrupt body: `invalid_image` (422).
 */
export async function sniffImage(bytes: Buffer, maxPixels: number): Promise<SniffedImage> {
  if (bytes.length === 0) throw jobErrors.invalidImage('the image is empty');
  const detected = await fileTypeFromBuffer(bytes);
  const accepted = detected ? ACCEPTED[detected.mime] : undefined;
  if (!detected || !accepted) throw unsupported(detected?.mime);
  const meta = await readHeader(bytes);
  if (meta.format !== accepted.sharpFormat) {
    throw jobErrors.invalidImage(`the content looks like ${detected.mime} but decodes as ${meta.format}`);
  }
  const { width, height } = meta.autoOrient ?? meta;
  if (!width || !height) throw jobErrors.invalidImage('the image has no dimensions');
  if (width * height > maxPixels) {
    throw jobErrors.invalidImage(
      `the image is ${width}x${height} (${width * height} pixels), above the limit of ${maxPixels}`,
    );
  }
  await probeDecode(bytes, maxPixels);
  return { contentType: detected.mime, format: accepted.format, width, height, bytes: bytes.length };
}

async function readHeader(bytes: Buffer): Promise<Metadata> {
  try {
    // metadata() parses headers only; the pixel limit is ours to apply, after we know the size.
    return await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw jobErrors.invalidImage(`the image header is unreadable: ${(err as Error).message}`, err);
  }
}

/**
 * Truncation and corruption only show when the compressed data is read, so we decode once, into a tiny
 * thumbnail. Checking for trailing markers (JPEG EOI, PNG IEND, GIF trailer) would be cheaper but is per-format,
 * misses damage in the middle and trips on files with trailing bytes; the decoder's own `failOn: 'truncated'`
 * covers every accepted format with one rule. JPEG and WebP decode at reduced scale, so the cost stays far
 * below a full decode; memory stays small because libvips streams through a resize.
 */
export async function probeDecode(bytes: Buffer, maxPixels: number): Promise<void> {
  try {
    await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .resize(PROBE_SIZE, PROBE_SIZE, { fit: 'inside', withoutEnlargement: true })
      .raw()
      .toBuffer();
  } catch (err) {
    throw jobErrors.invalidImage(`the image is truncated or corrupt: ${(err as Error).message}`, err);
  }
}
