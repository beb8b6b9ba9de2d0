import * as tf from '@tensorflow/tfjs-core';
import sharp, { type Sharp } from 'sharp';
import {
  BLAZEFACE_BACK_GRIDS,
  anchorCentres,
  decodeHead,
  mergeOverlapping,
  type Detection,
  type Point,
} from './decode.js';
import { INPUT_SIZE, loadBlazeface } from './model.js';

/** A face in image pixels. */
export interface Face {
  box: { x: number; y: number; width: number; height: number };
  score: number;
  /** right eye, left eye, nose tip, mouth centre, right ear, left ear, in image pixels. */
  keypoints: Point[];
}

export interface DetectOptions {
  /** Lowest score kept (0..1). */
  minScore?: number;
}

/**
 * Measured on Human's sample photos: real faces scored 0.72 to 0.95, while hair, hands and backdrops in tight
 * crops reached 0.64 at most.
 */
export const DEFAULT_MIN_SCORE = 0.7;

const HEADS = BLAZEFACE_BACK_GRIDS.map((grid) => anchorCentres(grid));

interface Letterbox {
  pixels: Buffer;
  /** How many model-input pixels one image pixel became. */
  scale: number;
  /** Where the image's top-left corner sits in the model input. */
  left: number;
  top: number;
}

/**
 * The network was trained on faces that fill a modest part of the frame; a close-up selfie can score below the
 * threshold. When the full-frame pass finds nothing, the image is shown again at this fraction of the input,
 * centred on black, which makes a close-up face look like the ones it knows.
 */
const ZOOM_OUT = 0.5;

/**
 * Finds faces in an upright sRGB image, largest first. The image is scaled to fit 256x256 with its aspect kept,
 * so boxes map back with one scale factor and an offset.
 */
export async function detectFaces(
  image: Sharp,
  width: number,
  height: number,
  opts: DetectOptions = {},
): Promise<Face[]> {
  const model = await loadBlazeface();
  const minScore = opts.minScore ?? DEFAULT_MIN_SCORE;
  const faces = await detectAtZoom(model, image, width, height, 1, minScore);
  if (faces.length > 0) return faces;
  return detectAtZoom(model, image, width, height, ZOOM_OUT, minScore);
}

async function detectAtZoom(
  model: Awaited<ReturnType<typeof loadBlazeface>>,
  image: Sharp,
  width: number,
  height: number,
  zoom: number,
  minScore: number,
): Promise<Face[]> {
  const letterbox = await toLetterbox(image, width, height, zoom);
  const outputs = runModel(model, letterbox.pixels);
  try {
    const [scores16, boxes16, scores8, boxes8] = await Promise.all(
      outputs.map((t) => t.data() as Promise<Float32Array>),
    );
    const candidates = [
      ...decodeHead(HEADS[0], scores16, boxes16, INPUT_SIZE, minScore),
      ...decodeHead(HEADS[1], scores8, boxes8, INPUT_SIZE, minScore),
    ];
    return mergeOverlapping(candidates)
      .map((d) => toImagePixels(d, letterbox, width, height))
      .filter((face) => face.box.width >= 4 && face.box.height >= 4)
      .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
  } finally {
    outputs.forEach((t) => t.dispose());
  }
}

async function toLetterbox(image: Sharp, width: number, height: number, zoom: number): Promise<Letterbox> {
  const scale = (INPUT_SIZE * zoom) / Math.max(width, height);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const left = Math.floor((INPUT_SIZE - w) / 2);
  const top = Math.floor((INPUT_SIZE - h) / 2);
  const resized = await image
    .clone()
    // A cut-out (alpha) image is judged as it will be shown on a plain backdrop, not on its hidden colours.
    .flatten({ background: '#ffffff' })
    .resize(w, h, { fit: 'fill' })
    .removeAlpha()
    .raw()
    .toBuffer();
  const pixels = sharp(resized, { raw: { width: w, height: h, channels: 3 } })
    .extend({ left, top, right: INPUT_SIZE - w - left, bottom: INPUT_SIZE - h - top, background: '#000000' })
    .raw()
    .toBuffer();
  return { pixels: await pixels, scale, left, top };
}

/** Returns score and box tensors for the 16x16 head, then the 8x8 head. */
function runModel(model: Awaited<ReturnType<typeof loadBlazeface>>, pixels: Buffer): tf.Tensor[] {
  return tf.tidy(() => {
    // The network was trained on pixels scaled to -1..1.
    const input = tf.sub(tf.div(tf.tensor4d(Float32Array.from(pixels), [1, INPUT_SIZE, INPUT_SIZE, 3]), 127.5), 1);
    const byAnchors = (
      model.execute(
        input,
        model.outputs.map((o) => o.name),
      ) as tf.Tensor[]
    ).map((t) => tf.squeeze(t, [0]));
    const small = byAnchors.filter((t) => t.shape[0] === 512);
    const large = byAnchors.filter((t) => t.shape[0] === 384);
    const order = (pair: tf.Tensor[]) => [...pair].sort((a, b) => (a.shape[1] ?? 0) - (b.shape[1] ?? 0));
    return [...order(small), ...order(large)];
  });
}

function toImagePixels(d: Detection, letterbox: Letterbox, width: number, height: number): Face {
  const px = (v: number) => (v * INPUT_SIZE - letterbox.left) / letterbox.scale;
  const py = (v: number) => (v * INPUT_SIZE - letterbox.top) / letterbox.scale;
  const left = clamp(px(d.x), 0, width);
  const top = clamp(py(d.y), 0, height);
  const right = clamp(px(d.x + d.width), 0, width);
  const bottom = clamp(py(d.y + d.height), 0, height);
  return {
    box: {
      x: Math.round(left),
      y: Math.round(top),
      width: Math.round(right) - Math.round(left),
      height: Math.round(bottom) - Math.round(top),
    },
    score: Math.round(d.score * 1000) / 1000,
    keypoints: d.keypoints.map((p) => ({ x: Math.round(px(p.x)), y: Math.round(py(p.y)) })),
  };
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
