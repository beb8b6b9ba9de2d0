import { jobErrors } from '../errors.js';

/**
 * The longest side any output may have: WebP's own limit in libvips, the smallest of the formats pixq writes,
 * so whether an output can be written never depends on the format asked for.
 */
export const MAX_OUTPUT_SIDE = 16_383;

export interface Size {
  width: number;
  height: number;
}

/**
 * Refuses an output beyond PIXQ_MAX_PIXELS or MAX_OUTPUT_SIDE. Processors call it with the size they computed
 * from their options and the input's header, before the pixel work: a 2 KB 1x60000 PNG resized to 300 wide
 * would otherwise become a 300x18,000,000 image, minutes of CPU that no job timeout stops inside libvips.
 */
export function checkOutputSize(size: Size, maxPixels: number): void {
  const { width, height } = size;
  if (width * height > maxPixels || width > MAX_OUTPUT_SIDE || height > MAX_OUTPUT_SIDE) {
    throw jobErrors.outputTooLarge(width, height, { maxPixels, maxSide: MAX_OUTPUT_SIDE });
  }
}
