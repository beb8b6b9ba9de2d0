/**
 * Where to cut a portrait around a detected face. BlazeFace's box runs from mid-forehead to just under the chin
 * and cheek to cheek, so a good head-and-shoulders crop needs more room above the box (hair) than below it.
 */

export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Size {
  width: number;
  height: number;
}

/** Parts of `margin` (times the face box size) kept around the face box on each side. */
const ABOVE = 1.5;
const BELOW = 0.5;
const SIDE = 0.5;

/** Parses `W:H` into width divided by height. */
export function parseAspect(aspect: string): number {
  const [w, h] = aspect.split(':').map(Number);
  return w / h;
}

/**
 * The ideal crop in image pixels (it may reach past the image): the face box grown by the margin, then widened
 * or heightened evenly on both sides to the aspect ratio.
 */
export function idealCrop(face: Region, aspect: number, margin: number): Region {
  const left = face.x - SIDE * margin * face.width;
  const right = face.x + face.width + SIDE * margin * face.width;
  const top = face.y - ABOVE * margin * face.height;
  const bottom = face.y + face.height + BELOW * margin * face.height;
  let width = right - left;
  let height = bottom - top;
  if (width / height < aspect) width = height * aspect;
  else height = width / aspect;
  const cx = (left + right) / 2;
  const cy = (top + bottom) / 2;
  return { x: cx - width / 2, y: cy - height / 2, width, height };
}

/**
 * Shrinks the crop about the face centre until it fits the image, but never so far that it cuts into the face
 * box: the face keeps its place in the frame (what ID photos need), and whatever still reaches past the image
 * is left for padding.
 */
export function fitToImage(crop: Region, face: Region, image: Size): Region {
  const px = face.x + face.width / 2;
  const py = face.y + face.height / 2;
  const reach = {
    left: px - crop.x,
    right: crop.x + crop.width - px,
    top: py - crop.y,
    bottom: crop.y + crop.height - py,
  };
  const room = { left: px, right: image.width - px, top: py, bottom: image.height - py };
  const faceReach = {
    left: px - face.x,
    right: face.x + face.width - px,
    top: py - face.y,
    bottom: face.y + face.height - py,
  };
  const sides = ['left', 'right', 'top', 'bottom'] as const;
  const fits = Math.min(1, ...sides.map((s) => room[s] / reach[s]));
  const keepsFace = Math.max(...sides.map((s) => faceReach[s] / reach[s]));
  const scale = Math.min(1, Math.max(fits, keepsFace));
  return {
    x: px - reach.left * scale,
    y: py - reach.top * scale,
    width: crop.width * scale,
    height: crop.height * scale,
  };
}

/** Whole pixels with the aspect ratio exact to the pixel: the height follows from the rounded width. */
export function toPixels(crop: Region, aspect: number): Region {
  const width = Math.max(1, Math.round(crop.width));
  const height = Math.max(1, Math.round(width / aspect));
  const cx = crop.x + crop.width / 2;
  const cy = crop.y + crop.height / 2;
  return { x: Math.round(cx - width / 2), y: Math.round(cy - height / 2), width, height };
}

export interface CutPlan {
  /** The part of the crop that lies on the image. */
  extract: Region;
  /** Pixels to add on each side to make up the rest of the crop. */
  pad: { top: number; bottom: number; left: number; right: number };
}

/** Splits a crop into the part inside the image and the padding around it. */
export function planCut(crop: Region, image: Size): CutPlan {
  const left = Math.max(0, crop.x);
  const top = Math.max(0, crop.y);
  const right = Math.min(image.width, crop.x + crop.width);
  const bottom = Math.min(image.height, crop.y + crop.height);
  return {
    extract: { x: left, y: top, width: Math.max(1, right - left), height: Math.max(1, bottom - top) },
    pad: {
      left: left - crop.x,
      top: top - crop.y,
      right: Math.max(0, crop.x + crop.width - right),
      bottom: Math.max(0, crop.y + crop.height - bottom),
    },
  };
}
