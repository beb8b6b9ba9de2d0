import sharp from 'sharp';
import type { Box } from '../models/mask.js';
import type { Size } from './framing.js';

/**
 * A soft drop shadow for a framed cut-out, as product photos on white carry one so the product does not float:
 * the subject's own silhouette, moved by an offset, blurred and darkened to `opacity`, laid behind the subject
 * ("over" compositing: the subject's pixels stay exactly as they were, the shadow shows only where the subject is
 * see-through). Sizes are percents of the subject's larger side on the canvas, so a template looks the same at
 * any photo size.
 */
export interface ShadowOptions {
  /** Darkness of the shadow where the silhouette is solid, 0..1. */
  opacity: number;
  /** Gaussian blur (sigma), in percent of the subject's larger side. */
  blur: number;
  /** Offset of the shadow, in percent of the subject's larger side (positive: right, down). */
  offsetX: number;
  offsetY: number;
}

/** Adds the shadow to `rgba` (the canvas, 4 bytes per pixel) in place. */
export async function addShadow(rgba: Buffer, canvas: Size, subject: Box, options: ShadowOptions): Promise<void> {
  const unit = Math.max(subject.width, subject.height) / 100;
  const shadow = silhouette(rgba, canvas, Math.round(options.offsetX * unit), Math.round(options.offsetY * unit));
  const sigma = options.blur * unit;
  const soft =
    sigma >= 0.3
      ? await sharp(shadow, { raw: { ...canvas, channels: 1 } })
          .blur(sigma)
          .toColourspace('b-w')
          .raw()
          .toBuffer()
      : shadow;
  for (let i = 0, p = 0; i < soft.length; i++, p += 4) {
    const a = rgba[p + 3] / 255;
    const s = (soft[i] / 255) * options.opacity * (1 - a);
    const out = a + s;
    if (out === 0) continue;
    // The shadow is black: the colour is the subject's, weighted by its share of the result.
    for (let c = 0; c < 3; c++) rgba[p + c] = Math.round((rgba[p + c] * a) / out);
    rgba[p + 3] = Math.round(out * 255);
  }
}

/** The canvas's alpha moved by (dx, dy), one byte per pixel. */
function silhouette(rgba: Buffer, canvas: Size, dx: number, dy: number): Buffer {
  const { width, height } = canvas;
  const out = Buffer.alloc(width * height);
  for (let y = Math.max(0, dy); y < Math.min(height, height + dy); y++) {
    const src = (y - dy) * width;
    for (let x = Math.max(0, dx); x < Math.min(width, width + dx); x++)
      out[y * width + x] = rgba[(src + x - dx) * 4 + 3];
  }
  return out;
}
