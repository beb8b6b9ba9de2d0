import type { Gravity, RenderOptions } from './options.js';

/**
 * Where the pixels of a variant come from, computed from the source's size and the options alone, before any
 * pixel is decoded: so the output's size is known (and bounded) first. The rules are imgproxy's, as its
 * documentation describes them:
 * - `fit` keeps the aspect ratio inside width x height; `fill` covers width x height and crops the rest;
 *   `fill-down` is `fill` that, when the source is too small, crops to the requested aspect ratio instead of
 *   enlarging; `force` takes both sides as given; `auto` is `fill` when source and target have the same
 *   orientation, else `fit`. A side of 0 follows from the other one.
 * - Without `enlarge` nothing grows beyond the source, the `dpr` factor included.
 * - The result is cropped to width x height times the dpr used, placed by `gravity`; with `extend`, a smaller
 *   result is padded to that size, placed by the extend gravity.
 */

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface RenderPlan {
  /** The size the source is scaled to. */
  scaled: { width: number; height: number };
  /** The part of the scaled image kept; undefined: all of it. */
  crop: Box | undefined;
  /** Padding to a larger canvas: the canvas size and where the image sits on it. */
  extend: Box | undefined;
  /** The output's size. */
  width: number;
  height: number;
}

export function planRender(srcWidth: number, srcHeight: number, o: RenderOptions): RenderPlan {
  const { wshrink, hshrink, dprScale } = shrinkFactors(srcWidth, srcHeight, o);
  const scaled = {
    width: Math.max(1, Math.round(srcWidth / wshrink)),
    height: Math.max(1, Math.round(srcHeight / hshrink)),
  };
  let target = { width: Math.round(o.width * dprScale), height: Math.round(o.height * dprScale) };
  if (o.resizingType === 'fill-down') target = keepAspectWithin(target, scaled);
  const crop = cropBox(scaled, target, o.gravity, dprScale);
  const cropped = crop ?? scaled;
  const extend = o.extend ? extendBox(cropped, target, o.extendGravity, dprScale) : undefined;
  const final = extend ?? cropped;
  return { scaled, crop, extend, width: final.width, height: final.height };
}

function shrinkFactors(srcWidth: number, srcHeight: number, o: RenderOptions) {
  let wshrink = o.width > 0 ? srcWidth / o.width : 1;
  let hshrink = o.height > 0 ? srcHeight / o.height : 1;
  if (wshrink !== 1 || hshrink !== 1) {
    const type = o.resizingType === 'auto' ? autoType(srcWidth, srcHeight, o) : o.resizingType;
    if (o.width === 0 && type !== 'force') wshrink = hshrink;
    else if (o.height === 0 && type !== 'force') hshrink = wshrink;
    else if (type === 'fit') wshrink = hshrink = Math.max(wshrink, hshrink);
    else if (type === 'fill' || type === 'fill-down') wshrink = hshrink = Math.min(wshrink, hshrink);
  }
  let dprScale = o.dpr;
  if (!o.enlarge) {
    const least = Math.min(wshrink, hshrink);
    if (least < 1) {
      wshrink /= least;
      hshrink /= least;
      // Extended output keeps the requested size times dpr; otherwise the dpr shrinks with the lost enlargement.
      if (!o.extend) dprScale /= least;
    }
    dprScale = Math.min(dprScale, wshrink, hshrink);
  }
  wshrink = Math.min(wshrink / dprScale, srcWidth);
  hshrink = Math.min(hshrink / dprScale, srcHeight);
  return { wshrink, hshrink, dprScale };
}

function autoType(srcWidth: number, srcHeight: number, o: RenderOptions): 'fill' | 'fit' {
  const dstWidth = o.width || srcWidth;
  const dstHeight = o.height || srcHeight;
  const sameOrientation = srcWidth - srcHeight >= 0 === dstWidth - dstHeight >= 0;
  return sameOrientation ? 'fill' : 'fit';
}

/** fill-down on a source smaller than the target: the target shrunk to fit, keeping its aspect ratio. */
function keepAspectWithin(target: { width: number; height: number }, image: { width: number; height: number }) {
  if (target.width === 0 || target.height === 0) return target;
  const overW = target.width / image.width;
  const overH = target.height / image.height;
  if (overW > overH && overW > 1) {
    return { width: image.width, height: Math.round((image.width * target.height) / target.width) };
  }
  if (overH > overW && overH > 1) {
    return { width: Math.round((image.height * target.width) / target.height), height: image.height };
  }
  return target;
}

function cropBox(
  image: { width: number; height: number },
  target: { width: number; height: number },
  gravity: Gravity,
  dprScale: number,
): Box | undefined {
  const width = Math.min(target.width || image.width, image.width);
  const height = Math.min(target.height || image.height, image.height);
  if (width >= image.width && height >= image.height) return undefined;
  return { ...position(image, { width, height }, gravity, dprScale), width, height };
}

function extendBox(
  image: { width: number; height: number },
  target: { width: number; height: number },
  gravity: Gravity,
  dprScale: number,
): Box | undefined {
  const width = Math.max(target.width, image.width);
  const height = Math.max(target.height, image.height);
  if (width === image.width && height === image.height) return undefined;
  // Where the image sits on the canvas is where a canvas-sized window would sit on it, mirrored.
  const { left, top } = position({ width, height }, image, gravity, dprScale);
  return { left, top, width, height };
}

/** The top-left corner of an `inner` box placed inside `outer` by `gravity`, kept inside `outer`. */
export function position(
  outer: { width: number; height: number },
  inner: { width: number; height: number },
  gravity: Gravity,
  dprScale: number,
): { left: number; top: number } {
  let left: number;
  let top: number;
  if (gravity.type === 'fp') {
    left = Math.round(outer.width * gravity.x) - Math.floor(inner.width / 2);
    top = Math.round(outer.height * gravity.y) - Math.floor(inner.height / 2);
  } else {
    // An offset of at least one is pixels (scaled like the output); below one, a fraction of the outer size.
    const offset = (value: number, size: number) =>
      Math.abs(value) >= 1 ? Math.round(value * dprScale) : Math.round(size * value);
    const dx = offset(gravity.x, outer.width);
    const dy = offset(gravity.y, outer.height);
    const g = gravity.type;
    left = g.endsWith('ea')
      ? outer.width - inner.width - dx
      : g.endsWith('we')
        ? dx
        : Math.floor((outer.width - inner.width) / 2) + dx;
    top = g.startsWith('no')
      ? dy
      : g.startsWith('so')
        ? outer.height - inner.height - dy
        : Math.floor((outer.height - inner.height) / 2) + dy;
  }
  return {
    left: Math.max(0, Math.min(left, outer.width - inner.width)),
    top: Math.max(0, Math.min(top, outer.height - inner.height)),
  };
}
