import { createHash } from 'node:crypto';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import type { BlobRef, BlobWriter } from '../../src/blobs/types.js';
import { packageDir } from '../../src/processors/faces/model.js';
import type { ProcessorContext, ProgressUpdate } from '../../src/processors/types.js';

/** Human's sample sheet: a top row of single photos separated by black columns, then a group photo. */
export const SAMPLES_JPG = path.join(packageDir('@vladmandic/human'), 'assets', 'samples.jpg');

export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Portrait {
  name: string;
  /** Where the photo sits on the sample sheet. */
  sheet: Region;
  /** Hand-measured face (brows to chin, cheek to cheek) in the upscaled portrait, checked by looking at crops. */
  face: Region;
}

/**
 * The top-row photos with one person each. The sheet's thumbnails are ~150 px tall, so each is upscaled
 * by UPSCALE to give the detector faces of a size real uploads have.
 */
export const UPSCALE = 4;

export const PORTRAITS: Portrait[] = [
  {
    name: 'woman-head-shoulders',
    sheet: { x: 166, y: 0, width: 151, height: 157 },
    face: { x: 185, y: 120, width: 140, height: 150 },
  },
  {
    name: 'man-at-table',
    sheet: { x: 326, y: 0, width: 210, height: 157 },
    face: { x: 432, y: 110, width: 128, height: 125 },
  },
  {
    name: 'woman-standing-arms-crossed',
    sheet: { x: 641, y: 0, width: 147, height: 157 },
    face: { x: 355, y: 95, width: 78, height: 88 },
  },
];

/**
 * Human's face-detection screenshot ends in a row of five real face close-ups, about 150 px each, cut from a group
 * photo that is not on the sample sheet: more real people to judge a model on, none in its calibration set.
 */
export const FACEDETECT_JPG = path.join(packageDir('@vladmandic/human'), 'assets', 'screenshot-facedetect.jpg');
export const CLOSE_UPS: Region[] = [8, 164, 321, 478, 634].map((x) => ({ x, y: 347, width: 150, height: 148 }));

/** One close-up of the screenshot, upscaled by UPSCALE like the portraits. */
export function closeUpJpeg(region: Region): Promise<Buffer> {
  return regionJpeg(FACEDETECT_JPG, region, UPSCALE);
}

/** Three people (woman, man, woman) at a party, top-right of the sample sheet. */
export const TRIO: Region = { x: 1129, y: 0, width: 144, height: 157 };

/** Cuts one photo off the sample sheet and upscales it, as a JPEG like a phone upload. */
export function portraitJpeg(portrait: Portrait): Promise<Buffer> {
  return regionJpeg(SAMPLES_JPG, portrait.sheet, UPSCALE);
}

/** Cuts any region of the sample sheet, upscaled by `scale`. */
export function sheetRegionJpeg(region: Region, scale: number): Promise<Buffer> {
  return regionJpeg(SAMPLES_JPG, region, scale);
}

/** A region of one of human's images, upscaled by `scale` (sharp's default kernel, lanczos3), as a JPEG. */
function regionJpeg(file: string, region: Region, scale: number): Promise<Buffer> {
  return sharp(file)
    .extract({ left: region.x, top: region.y, width: region.width, height: region.height })
    .resize(Math.round(region.width * scale), Math.round(region.height * scale))
    .jpeg({ quality: 92 })
    .toBuffer();
}

/** Flat shapes and a gradient: nothing a face detector should mistake for a face. */
export async function shapesPng(width = 640, height = 480): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g"><stop offset="0" stop-color="#3a6"/><stop offset="1" stop-color="#fc3"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/>
    <rect x="40" y="60" width="180" height="120" fill="#c22"/>
    <polygon points="400,40 600,200 330,260" fill="#228"/>
    <rect x="120" y="300" width="380" height="40" fill="#fff"/>
  </svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

export interface StoredBlob {
  data: Buffer;
  contentType: string;
}

/** A blob writer that keeps what it is given, so tests can decode the outputs. */
export class MemoryBlobs implements BlobWriter {
  readonly stored = new Map<string, StoredBlob>();

  async put(data: Buffer, contentType: string): Promise<BlobRef> {
    const key = createHash('sha256').update(data).digest('hex');
    this.stored.set(key, { data, contentType });
    return { key, bytes: data.length };
  }

  get(key: string): Buffer {
    const blob = this.stored.get(key);
    if (!blob) throw new Error(`no blob ${key}`);
    return blob.data;
  }
}

export interface TestContext<O> extends ProcessorContext<O> {
  blobs: MemoryBlobs;
  updates: ProgressUpdate[];
  controller: AbortController;
}

/** A processor context as the worker would build it, with in-memory blobs and recorded progress. */
export function testContext<O>(input: Buffer | undefined, options: O): TestContext<O> {
  const controller = new AbortController();
  const updates: ProgressUpdate[] = [];
  return {
    input,
    options,
    signal: controller.signal,
    controller,
    progress: (update) => updates.push(update),
    blobs: new MemoryBlobs(),
    updates,
    log: pino({ level: 'silent' }),
  };
}

/** Intersection over union of two boxes. */
export function overlap(a: Region, b: Region): number {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  return (w * h) / (a.width * a.height + b.width * b.height - w * h);
}

/** True when the whole of `inner` lies inside `outer`, allowing `slack` pixels for rounding. */
export function contains(outer: Region, inner: Region, slack = 1): boolean {
  return (
    inner.x >= outer.x - slack &&
    inner.y >= outer.y - slack &&
    inner.x + inner.width <= outer.x + outer.width + slack &&
    inner.y + inner.height <= outer.y + outer.height + slack
  );
}
