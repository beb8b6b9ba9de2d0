import sharp from 'sharp';
import { encodeImage, type EncodedImage } from '../processors/encode.js';
import type { RenderPlan } from './geometry.js';
import type { DeliveryFormat, RenderOptions } from './options.js';

/** A render that takes longer than this is cut off inside libvips (a 400-megapixel worst case takes seconds). */
const RENDER_TIMEOUT_S = 30;

const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * Renders one variant with sharp, following the plan worked out from the sizes alone: scale, crop (smart
 * gravity lets libvips' attention strategy place the crop), pad, then encode. A background colour fills
 * transparency; a format without alpha (JPEG) flattens onto white otherwise.
 */
export async function renderVariant(
  source: Buffer,
  plan: RenderPlan,
  options: RenderOptions,
  format: DeliveryFormat,
  maxPixels: number,
): Promise<EncodedImage> {
  let image = sharp(source, { limitInputPixels: maxPixels, failOn: 'truncated' })
    .timeout({ seconds: RENDER_TIMEOUT_S })
    .rotate();
  const hasAlpha = (await image.clone().metadata()).hasAlpha === true || plan.extend !== undefined;
  if (options.gravity.type === 'sm' && plan.crop) {
    image = image.resize(plan.crop.width, plan.crop.height, { fit: 'cover', position: sharp.strategy.attention });
  } else {
    image = image.resize(plan.scaled.width, plan.scaled.height, { fit: 'fill' });
    if (plan.crop) image = image.extract(plan.crop);
  }
  const background = options.background && {
    r: options.background[0],
    g: options.background[1],
    b: options.background[2],
    alpha: 1,
  };
  if (plan.extend) {
    const { left, top, width, height } = plan.extend;
    const inner = plan.crop ?? plan.scaled;
    image = image.extend({
      left,
      top,
      right: width - inner.width - left,
      bottom: height - inner.height - top,
      // libvips flattens before it pads, so the padding takes the final colour itself.
      background: background ?? (format === 'jpeg' ? WHITE : TRANSPARENT),
    });
  }
  return encodeImage(image, {
    format,
    quality: options.quality ?? undefined,
    flattenOnto: background ?? undefined,
    hasAlpha,
  });
}

/** An image's size as it is seen, EXIF orientation applied; from its header. */
export async function uprightSize(bytes: Buffer): Promise<{ width: number; height: number }> {
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  const { width = 1, height = 1 } = meta.autoOrient ?? meta;
  return { width, height };
}
