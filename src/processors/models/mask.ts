import sharp from 'sharp';
import { resizeCentred } from './resample.js';

/**
 * Clean-up of a predicted alpha mask. Runs at model resolution, so its cost does not grow with the image.
 *
 * - Pixels below `FAINT` are background haze and become 0.
 * - The rest is split into 8-connected regions. A region is kept when its confident part (>= 0.5) is at least
 *   `MIN_SHARE` of the largest region's and at least `MIN_AREA` of the frame: small disconnected blobs in a busy
 *   background go, a second shoe or a detached strap of similar size stays.
 * - Kept regions keep their exact values, so thin parts (straps, hair, spokes) attached to the subject are untouched.
 */
const FAINT = 24;
const CONFIDENT = 128;
const MIN_SHARE = 0.01;
const MIN_AREA = 0.0002;

export function refineMask(mask: Uint8Array, width: number, height: number): Uint8Array {
  const labels = new Int32Array(mask.length).fill(-1);
  const confident: number[] = [];
  const stack = new Int32Array(mask.length);
  for (let start = 0; start < mask.length; start++) {
    if (labels[start] !== -1 || mask[start] < FAINT) continue;
    confident.push(fillRegion(mask, width, height, start, confident.length, labels, stack));
  }
  let largest = 0;
  for (const count of confident) if (count > largest) largest = count;
  const minimum = Math.max(largest * MIN_SHARE, width * height * MIN_AREA, 1);
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    const label = labels[i];
    if (label !== -1 && confident[label] >= minimum) out[i] = mask[i];
  }
  return out;
}

/** Labels the region around `start` and returns how many of its pixels are confident. */
function fillRegion(
  mask: Uint8Array,
  width: number,
  height: number,
  start: number,
  label: number,
  labels: Int32Array,
  stack: Int32Array,
): number {
  let top = 0;
  let count = 0;
  stack[top++] = start;
  labels[start] = label;
  while (top > 0) {
    const p = stack[--top];
    if (mask[p] >= CONFIDENT) count++;
    const x = p % width;
    const y = (p - x) / width;
    for (let dy = -1; dy <= 1; dy++) {
      const ny = y + dy;
      if (ny < 0 || ny >= height) continue;
      for (let dx = -1; dx <= 1; dx++) {
        const nx = x + dx;
        if (nx < 0 || nx >= width) continue;
        const q = ny * width + nx;
        if (labels[q] !== -1 || mask[q] < FAINT) continue;
        labels[q] = label;
        stack[top++] = q;
      }
    }
  }
  return count;
}

/**
 * Scales a square model-resolution mask to the image size. With `feather`, a blur proportional to the upscale
 * factor smooths the staircase the upscale leaves; at sigma = scale / 2 a one-pixel (model) line keeps about 68%
 * of its strength, so thin parts stay above the 0.5 cut.
 */
export async function scaleMask(
  mask: Uint8Array,
  size: number,
  width: number,
  height: number,
  feather: boolean,
): Promise<Buffer> {
  // Without an explicit colourspace libvips hands a single band back as sRGB.
  const source = sharp(mask, { raw: { width: size, height: size, channels: 1 } }).toColourspace('b-w');
  const scaled = await resizeCentred(source, { width: size, height: size }, { width, height }, 'linear');
  if (scaled.channels !== 1) throw new Error(`mask came back with ${scaled.channels} channels`);
  const data = Buffer.from(scaled.data.buffer, scaled.data.byteOffset, scaled.data.length);
  if (!feather) return data;
  const sigma = Math.max(0.3, Math.max(width, height) / size / 2);
  return sharp(data, { raw: { width, height, channels: 1 } })
    .blur(sigma)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The smallest box holding every pixel at or above `threshold`; undefined when there is none. */
export function boundingBox(mask: Uint8Array, width: number, height: number, threshold: number): Box | undefined {
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] < threshold) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      maxY = y;
    }
  }
  if (maxX < 0) return undefined;
  return { left: minX, top: minY, width: maxX - minX + 1, height: maxY - minY + 1 };
}

/** Grows `box` by `marginPercent` of its longer side on every edge, clamped to the image. */
export function growBox(box: Box, marginPercent: number, width: number, height: number): Box {
  const margin = Math.round((Math.max(box.width, box.height) * marginPercent) / 100);
  const left = Math.max(0, box.left - margin);
  const top = Math.max(0, box.top - margin);
  const right = Math.min(width, box.left + box.width + margin);
  const bottom = Math.min(height, box.top + box.height + margin);
  return { left, top, width: right - left, height: bottom - top };
}

/**
 * rembg's `post_process_mask`: a morphological opening with a 3×3 cross (a greyscale minimum, then maximum,
 * which removes specks and hairline bridges one pixel wide), a Gaussian blur (sigma 2) to round the outline,
 * then a cut at half: the mask becomes hard-edged and smooth.
 */
export async function postProcessMask(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
  const opened = crossFilter(crossFilter(mask, width, height, Math.min), width, height, Math.max);
  const blurred = await sharp(opened, { raw: { width, height, channels: 1 } })
    .blur(2)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  for (let i = 0; i < blurred.length; i++) blurred[i] = blurred[i] < 127 ? 0 : 255;
  return blurred;
}

/** Each pixel becomes `pick` of itself and its four neighbours (those inside the image). */
function crossFilter(
  src: Uint8Array,
  width: number,
  height: number,
  pick: (...values: number[]) => number,
): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      out[i] = pick(
        src[i],
        x > 0 ? src[i - 1] : src[i],
        x < width - 1 ? src[i + 1] : src[i],
        y > 0 ? src[i - width] : src[i],
        y < height - 1 ? src[i + width] : src[i],
      );
    }
  }
  return out;
}
