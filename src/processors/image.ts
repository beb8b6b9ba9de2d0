import sharp, { type Metadata, type Sharp } from 'sharp';
import { jobErrors } from '../errors.js';
import { probeDecode } from '../intake/index.js';

export interface OpenedImage {
  /** A sharp pipeline with EXIF orientation applied and colours in sRGB; clone it before each use. */
  image: Sharp;
  /** Size after orientation. */
  width: number;
  height: number;
  /** Whether EXIF orientation turns the stored pixels, i.e. the input bytes are not upright as they are. */
  reoriented: boolean;
}

/**
 * Every processor's way in: checks the bytes are a decodable image within the pixel limit and returns it
 * upright in sRGB. Header-only checks come first so that a decompression bomb is refused before decoding.
 */
export async function openImage(input: Buffer | undefined, maxPixels: number): Promise<OpenedImage> {
  if (!input || input.length === 0) throw jobErrors.invalidImage('the job has no input image');
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw jobErrors.invalidImage(`input is not a readable image: ${(err as Error).message}`, err);
  }
  if (!meta.width || !meta.height) throw jobErrors.invalidImage('input image has no dimensions');
  if (meta.width * meta.height > maxPixels) {
    throw jobErrors.invalidImage(
      `input image is ${meta.width}x${meta.height} (${meta.width * meta.height} pixels), above the limit of ${maxPixels}`,
    );
  }
  const orientation = meta.orientation ?? 1;
  const swapsAxes = orientation >= 5;
  const image = sharp(input, { limitInputPixels: maxPixels, failOn: 'truncated' }).rotate().toColourspace('srgb');
  // A cheap decode into a thumbnail (the same check as at intake) turns a corrupt or truncated body into
  // invalid_image now, instead of a failure halfway through the processor; a full decode here would double
  // every processor's decoding work.
  await probeDecode(input, maxPixels);
  return {
    image,
    width: swapsAxes ? meta.height : meta.width,
    height: swapsAxes ? meta.width : meta.height,
    reoriented: orientation > 1,
  };
}
