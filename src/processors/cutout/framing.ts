import sharp from 'sharp';
import { validationFailed } from '../../errors.js';
import type { Box } from '../models/mask.js';
import { MAX_OUTPUT_SIDE } from '../output-size.js';

/**
 * Framing of a cut-out, as marketplaces and catalogues want it: the subject's box found from the mask (specks
 * ignored), an optional crop to it with a margin, then the subject scaled and placed on a canvas of a chosen
 * size or aspect. Amazon's main image, for one, is the product on white filling about 85 % of a square; a
 * catalogue's photos share one margin and position. The plan (`planFrame`) is pure arithmetic on the box; the
 * pixels move once (`placeOnCanvas`), so a 40-megapixel photo framed to 2000² px is resized once, not twice.
 */

/**
 * Alpha at or above this (half opaque) counts as subject for the box: the visible edge. Resampling a scaled
 * subject keeps an edge's half-way point where it was, whatever the kernel, so the box lands where it is asked;
 * a fainter fringe (a wisp of hair) may reach into the margin, and with no margin is trimmed.
 */
export const SUBJECT_THRESHOLD = 128;
/** A region of subject pixels smaller than this share of the largest region is a speck: it does not widen the box. */
export const SPECK_SHARE = 0.01;

export interface FramingOptions {
  crop: boolean;
  /** A number: percent of the subject box's longer side on every side; or 1-4 CSS-ordered values in px or %. */
  cropMargin: number | string;
  /** The subject's larger side as a percent of the canvas (it fits that share of both sides), or as it comes. */
  scale: number | 'original';
  /** `original`, `center` or "x% y%"; default: center when scale is a percent, else original. */
  position?: string;
  canvas?: { width?: number; height?: number; aspect?: string };
  /** The output is scaled down to at most this many megapixels. */
  maxMegapixels?: number;
}

export interface Size {
  width: number;
  height: number;
}

export interface Frame {
  canvas: Size;
  /** Source pixel (x, y) lands at (x·scale + offsetX, y·scale + offsetY) on the canvas. */
  scale: number;
  offsetX: number;
  offsetY: number;
  /** The subject's box on the canvas (clipped to it); undefined when no subject was found. */
  foreground: Box | undefined;
  /** With crop: the region of the photo the canvas shows before scaling (may reach past the photo's edges). */
  crop: Box | undefined;
}

const PERCENT = String.raw`\d{1,3}(?:\.\d+)?%`;
const LENGTH = String.raw`\d{1,5}(?:\.\d+)?(?:px|%)`;
export const POSITION_PATTERN = `^(?:original|center|${PERCENT}(?: ${PERCENT})?)$`;
export const MARGIN_PATTERN = `^${LENGTH}(?: ${LENGTH}){0,3}$`;
export const ASPECT_PATTERN = String.raw`^\d{1,5}:\d{1,5}$`;

/** The checks the schema's patterns cannot make: percents up to 100, a non-zero aspect, no over-determined canvas. */
export function validateFraming(options: FramingOptions): void {
  const refuse = (path: string, message: string) =>
    validationFailed(`options.${path}: ${message}`, { errors: [{ path: `options.${path}`, message }] });
  if (typeof options.cropMargin === 'string') {
    for (const part of options.cropMargin.split(' ')) {
      if (part.endsWith('%') && parseFloat(part) > 100) throw refuse('cropMargin', `${part} is above 100%`);
      if (part.endsWith('px') && parseFloat(part) > MAX_OUTPUT_SIDE)
        throw refuse('cropMargin', `${part} is above ${MAX_OUTPUT_SIDE}px`);
    }
  }
  if (options.position && /\d/.test(options.position) && positionPercents(options.position).some((p) => p > 100))
    throw refuse('position', `"${options.position}": each percent must be 0-100%`);
  const canvas = options.canvas;
  if (canvas?.aspect !== undefined) {
    if (aspectOf(canvas.aspect) === undefined) throw refuse('canvas.aspect', `"${canvas.aspect}" has a zero side`);
    if (canvas.width !== undefined && canvas.height !== undefined)
      throw refuse('canvas.aspect', 'give width and height, or one of them with an aspect, not all three');
  }
}

/**
 * The subject's box in `alpha` (regions of alpha ≥ SUBJECT_THRESHOLD, specks left out); undefined when empty.
 * Its edges are where the alpha crosses the threshold, found to a fraction of a pixel between the outermost
 * subject pixels and their outer neighbours: a soft edge scaled up 3x would otherwise land a pixel or two off.
 */
export function subjectBox(alpha: Uint8Array, width: number, height: number): Box | undefined {
  const regions = subjectRegions(alpha, width, height);
  const largest = regions.reduce((max, r) => Math.max(max, r.area), 0);
  const kept = regions.filter((r) => r.area >= largest * SPECK_SHARE);
  if (kept.length === 0) return undefined;
  const left = Math.min(...kept.map((r) => r.left));
  const top = Math.min(...kept.map((r) => r.top));
  const right = Math.max(...kept.map((r) => r.right));
  const bottom = Math.max(...kept.map((r) => r.bottom));
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : alpha[y * width + x]);
  // How far a side reaches past the centres of its outermost pixels: the largest threshold crossing along it,
  // between each of those pixels and its outer neighbour (`outward`: -1 left or up, 1 right or down).
  const reach = (line: number, from: number, to: number, vertical: boolean, outward: number) => {
    let most = 0;
    for (let k = from; k <= to; k++) {
      const a = vertical ? at(line, k) : at(k, line);
      const b = vertical ? at(line + outward, k) : at(k, line + outward);
      if (a >= SUBJECT_THRESHOLD && b < SUBJECT_THRESHOLD) most = Math.max(most, (a - SUBJECT_THRESHOLD) / (a - b));
    }
    return most;
  };
  const l = left + 0.5 - reach(left, top, bottom, true, -1);
  const r = right + 0.5 + reach(right, top, bottom, true, 1);
  const t = top + 0.5 - reach(top, left, right, false, -1);
  const b = bottom + 0.5 + reach(bottom, left, right, false, 1);
  return { left: l, top: t, width: r - l, height: b - t };
}

interface Region {
  area: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/**
 * 8-connected regions of subject pixels, labelled by runs: each row's runs are joined (union-find) to the runs of
 * the row above that touch them, diagonals included. Memory grows with the number of runs, not of pixels.
 */
function subjectRegions(alpha: Uint8Array, width: number, height: number): Region[] {
  const parent: number[] = [];
  const runs: { row: number; start: number; end: number }[] = [];
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  let previous: number[] = [];
  for (let y = 0; y < height; y++) {
    const current: number[] = [];
    let x = 0;
    const row = y * width;
    while (x < width) {
      if (alpha[row + x] < SUBJECT_THRESHOLD) {
        x++;
        continue;
      }
      const start = x;
      while (x < width && alpha[row + x] >= SUBJECT_THRESHOLD) x++;
      const id = runs.length;
      runs.push({ row: y, start, end: x - 1 });
      parent.push(id);
      for (const above of previous) {
        const run = runs[above];
        if (run.end >= start - 1 && run.start <= x) parent[find(above)] = find(id);
      }
      current.push(id);
    }
    previous = current;
  }
  const regions = new Map<number, Region>();
  for (const [id, run] of runs.entries()) {
    const root = find(id);
    const region = regions.get(root);
    const area = run.end - run.start + 1;
    if (!region) {
      regions.set(root, { area, left: run.start, top: run.row, right: run.end, bottom: run.row });
      continue;
    }
    region.area += area;
    region.left = Math.min(region.left, run.start);
    region.right = Math.max(region.right, run.end);
    region.top = Math.min(region.top, run.row);
    region.bottom = Math.max(region.bottom, run.row);
  }
  return [...regions.values()];
}

/** Whether the options ask for anything but the photo's own frame at its own size. */
export function reframes(options: FramingOptions): boolean {
  return (
    options.crop ||
    options.scale !== 'original' ||
    (options.position !== undefined && options.position !== 'original') ||
    options.canvas !== undefined ||
    options.maxMegapixels !== undefined
  );
}

/**
 * Where everything goes. Steps: the frame (the photo, or with crop the subject's box grown by the margin); the
 * canvas (its size, or the frame's grown to the aspect); the scale (the subject's larger side at `scale` % of the
 * canvas, or the frame fitted into the canvas); the position of the subject's box; then, past maxMegapixels,
 * everything scaled down together. Without a subject the whole photo stands in for it.
 */
export function planFrame(subject: Box | undefined, image: Size, options: FramingOptions): Frame {
  const box = subject ?? { left: 0, top: 0, width: image.width, height: image.height };
  const crop = options.crop ? grow(box, options.cropMargin) : undefined;
  const frame = crop ?? { left: 0, top: 0, ...image };
  const canvas = canvasSize(frame, options.canvas);
  let scale =
    options.scale === 'original'
      ? Math.min(canvas.width / frame.width, canvas.height / frame.height)
      : (options.scale / 100) * Math.min(canvas.width / box.width, canvas.height / box.height);
  let [x, y] = subjectPlace(box, frame, canvas, scale, options);
  const pixels = canvas.width * canvas.height;
  if (options.maxMegapixels !== undefined && pixels > options.maxMegapixels * 1e6) {
    const f = Math.sqrt((options.maxMegapixels * 1e6) / pixels);
    canvas.width = Math.max(1, Math.floor(canvas.width * f));
    canvas.height = Math.max(1, Math.floor(canvas.height * f));
    [scale, x, y] = [scale * f, x * f, y * f];
  }
  const foreground =
    subject && clip(roundBox({ left: x, top: y, width: box.width * scale, height: box.height * scale }), canvas);
  const offsetX = x - box.left * scale;
  const offsetY = y - box.top * scale;
  return { canvas, scale, offsetX, offsetY, foreground, crop: crop && roundBox(crop) };
}

function grow(box: Box, margin: number | string): Box {
  const [top, right, bottom, left] = margins(margin, Math.max(box.width, box.height));
  return {
    left: box.left - left,
    top: box.top - top,
    width: box.width + left + right,
    height: box.height + top + bottom,
  };
}

/** Margins in px, CSS order (top, right, bottom, left); percents are of the subject box's longer side. */
function margins(margin: number | string, longer: number): [number, number, number, number] {
  const px = (v: string | number) =>
    Math.round(typeof v === 'number' || v.endsWith('%') ? (parseFloat(String(v)) * longer) / 100 : parseFloat(v));
  if (typeof margin === 'number') return [px(margin), px(margin), px(margin), px(margin)];
  const parts = margin.split(' ').map(px);
  const [top, right = top, bottom = top, left = right] = parts;
  return [top, right, bottom, left];
}

function canvasSize(frame: Box, canvas: FramingOptions['canvas']): Size {
  const aspect = canvas?.aspect === undefined ? frame.width / frame.height : aspectOf(canvas.aspect)!;
  const side = (v: number) => Math.max(1, Math.round(v));
  if (canvas?.width !== undefined && canvas.height !== undefined) return { width: canvas.width, height: canvas.height };
  if (canvas?.width !== undefined) return { width: canvas.width, height: side(canvas.width / aspect) };
  if (canvas?.height !== undefined) return { width: side(canvas.height * aspect), height: canvas.height };
  // Only an aspect (or nothing): the frame grown on one axis to that aspect.
  if (frame.width / frame.height >= aspect) return { width: side(frame.width), height: side(frame.width / aspect) };
  return { width: side(frame.height * aspect), height: side(frame.height) };
}

/**
 * The subject box's top-left on the canvas. Percent positions are CSS's: 0 % puts it against the left (top)
 * edge, 100 % against the right (bottom). `original` keeps it where it is in the frame, the frame centred on the
 * canvas; with a scaled subject, its centre keeps its relative place in the frame, moved just enough to fit.
 */
function subjectPlace(box: Box, frame: Box, canvas: Size, scale: number, options: FramingOptions): [number, number] {
  const position = options.position ?? (options.scale === 'original' ? 'original' : 'center');
  const [w, h] = [box.width * scale, box.height * scale];
  if (position === 'original' && options.scale === 'original') {
    return [
      (canvas.width - frame.width * scale) / 2 + (box.left - frame.left) * scale,
      (canvas.height - frame.height * scale) / 2 + (box.top - frame.top) * scale,
    ];
  }
  if (position === 'original') {
    const cx = ((box.left + box.width / 2 - frame.left) / frame.width) * canvas.width;
    const cy = ((box.top + box.height / 2 - frame.top) / frame.height) * canvas.height;
    return [within(cx - w / 2, canvas.width - w), within(cy - h / 2, canvas.height - h)];
  }
  const [px, py] = position === 'center' ? [50, 50] : positionPercents(position);
  return [((canvas.width - w) * px) / 100, ((canvas.height - h) * py) / 100];
}

function positionPercents(position: string): [number, number] {
  const [x, y = x] = position.split(' ').map((p) => parseFloat(p));
  return [x, y];
}

function aspectOf(aspect: string): number | undefined {
  const [w, h] = aspect.split(':').map(Number);
  return w > 0 && h > 0 ? w / h : undefined;
}

/** Clamps a start so that a length fits in [0, room + length]; a length larger than the room is centred. */
function within(start: number, room: number): number {
  return room < 0 ? room / 2 : Math.min(Math.max(start, 0), room);
}

function roundBox(box: Box): Box {
  const left = Math.round(box.left);
  const top = Math.round(box.top);
  return {
    left,
    top,
    width: Math.round(box.left + box.width) - left,
    height: Math.round(box.top + box.height) - top,
  };
}

function clip(box: Box, canvas: Size): Box {
  const left = Math.max(0, box.left);
  const top = Math.max(0, box.top);
  const right = Math.min(canvas.width, box.left + box.width);
  const bottom = Math.min(canvas.height, box.top + box.height);
  return { left, top, width: Math.max(0, right - left), height: Math.max(0, bottom - top) };
}

/**
 * The photo's RGBA moved onto a transparent canvas as `frame` says. Only the part of the photo that lands on the
 * canvas is resized (sharp, lanczos3, alpha premultiplied), then copied in row by row, clipped at the edges.
 */
export async function placeOnCanvas(rgba: Uint8Array, image: Size, frame: Frame): Promise<Buffer> {
  const { canvas, scale, offsetX, offsetY } = frame;
  const out = Buffer.alloc(canvas.width * canvas.height * 4);
  const x0 = Math.max(0, Math.floor(-offsetX / scale));
  const y0 = Math.max(0, Math.floor(-offsetY / scale));
  const x1 = Math.min(image.width, Math.ceil((canvas.width - offsetX) / scale));
  const y1 = Math.min(image.height, Math.ceil((canvas.height - offsetY) / scale));
  if (x1 <= x0 || y1 <= y0) return out;
  const region = { left: x0, top: y0, width: x1 - x0, height: y1 - y0 };
  const target = {
    width: Math.max(1, Math.round(region.width * scale)),
    height: Math.max(1, Math.round(region.height * scale)),
  };
  let source: Uint8Array = rgba;
  let sourceWidth = image.width;
  if (scale !== 1 || region.width !== image.width || region.height !== image.height) {
    let piece = sharp(rgba, { raw: { ...image, channels: 4 } }).extract(region);
    if (target.width !== region.width || target.height !== region.height)
      piece = piece.resize(target.width, target.height, { fit: 'fill' });
    source = await piece.raw().toBuffer();
    sourceWidth = target.width;
  }
  const left = Math.round(offsetX + x0 * scale);
  const top = Math.round(offsetY + y0 * scale);
  const from = Math.max(0, -left);
  const to = Math.min(target.width, canvas.width - left);
  if (to <= from) return out;
  for (let y = Math.max(0, -top); y < Math.min(target.height, canvas.height - top); y++) {
    const src = (y * sourceWidth + from) * 4;
    out.set(source.subarray(src, src + (to - from) * 4), ((top + y) * canvas.width + left + from) * 4);
  }
  return out;
}
