import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { packageDir } from '../faces/model.js';
import type { ModelSpec } from './catalog.js';
import { OnnxHost, type OnnxHostOptions } from './onnx-worker.js';
import { RANGES_OUTPUT } from './quantize.js';
import { modelInput } from './resample.js';
import { toInputTensor } from './tensors.js';

/**
 * The images whose activations set the int8 scales: what remove-background sees in practice, product shots and
 * people. Real photos come from the sample sheet that @vladmandic/human ships (a production dependency, for face
 * detection): five single photos and three crops of its group photo. The portraits the tests and the bench judge
 * quality on (sheet x 166, 326, 641) are left out, so that they measure the model on photos it was not tuned on.
 * Products are drawn here, unlike the test scenes, on plain, gradient, dark and busy backgrounds.
 * Changing this list changes calibrationSet(), which rebuilds the cached model.
 */
const SHEET_PHOTOS = [
  { left: 0, top: 0, width: 158, height: 157 },
  { left: 545, top: 0, width: 89, height: 157 },
  { left: 797, top: 0, width: 106, height: 157 },
  { left: 911, top: 0, width: 211, height: 157 },
  { left: 1130, top: 0, width: 150, height: 157 },
  { left: 0, top: 196, width: 560, height: 962 },
  { left: 360, top: 196, width: 560, height: 962 },
  { left: 720, top: 196, width: 560, height: 962 },
];

const PRODUCTS = [
  {
    shape:
      '<rect x="330" y="180" width="340" height="420" rx="18" fill="#d35400"/><rect x="330" y="300" width="340" height="90" fill="#fdebd0"/>',
    background: '#f2f2f2',
  },
  {
    shape: '<circle cx="500" cy="390" r="210" fill="#2471a3"/><circle cx="430" cy="320" r="60" fill="#aed6f1"/>',
    background: 'url(#fade)',
  },
  {
    shape:
      '<path d="M440 140h120v90q70 50 70 140v250h-260v-250q0-90 70-140z" fill="#1e8449"/><rect x="440" y="110" width="120" height="40" fill="#7d6608"/>',
    background: '#1c1c1c',
  },
  {
    shape:
      '<path d="M250 560q0-140 160-180l150-120q70-40 100 40q40 90 120 130q50 40 20 130z" fill="#f4f6f7"/><path d="M250 560h520v40h-520z" fill="#839192"/>',
    background: 'url(#stripes)',
  },
  {
    shape:
      '<rect x="300" y="240" width="400" height="300" rx="40" fill="#212f3d"/><circle cx="500" cy="390" r="110" fill="#85929e"/><circle cx="500" cy="390" r="70" fill="#17202a"/>',
    background: '#fadbd8',
  },
  {
    shape:
      '<path d="M380 300h240l40 320h-320z" fill="#884ea0"/><path d="M420 300c0-160 160-160 160 0" stroke="#4a235a" stroke-width="16" fill="none"/>',
    background: 'url(#fade)',
  },
];

const DEFS = `<defs><linearGradient id="fade" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#fef9e7"/><stop offset="1" stop-color="#c8c2b0"/></linearGradient>
  <pattern id="stripes" width="60" height="60" patternUnits="userSpaceOnUse" patternTransform="rotate(20)"><rect width="60" height="60" fill="#5d6d7e"/><rect width="26" height="60" fill="#d5d8dc"/></pattern></defs>`;

export const CALIBRATION_IMAGES = SHEET_PHOTOS.length + PRODUCTS.length;

/** Names the first `count` images above; part of the cached model's checksum. */
export function calibrationSet(count: number): string {
  const sheet = SHEET_PHOTOS.map((r) => `${r.left},${r.top},${r.width},${r.height}`).join(';');
  return `sheet:${sheet}|products:${PRODUCTS.length}:v1|first ${count}`;
}

async function product(index: number): Promise<Sharp> {
  const { shape, background } = PRODUCTS[index];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="900" viewBox="0 0 1000 750">${DEFS}
    <rect width="1000" height="750" fill="${background}"/><ellipse cx="500" cy="615" rx="230" ry="20" fill="#000" opacity="0.25"/>${shape}</svg>`;
  const picture = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
  const raw = { width: 1200, height: 900, channels: 3 as const };
  const noise = await sharp({
    create: { ...raw, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 16 } },
  })
    .raw()
    .toBuffer();
  const jpeg = await sharp(picture, { raw })
    .composite([{ input: noise, raw, blend: 'soft-light' }])
    .jpeg({ quality: 90 })
    .toBuffer();
  return sharp(jpeg);
}

/** The calibration images as the model's RGB input, one at a time (a 1024 px tensor is 12 MB). */
async function* calibrationInputs(size: number): AsyncGenerator<Uint8Array> {
  const sheet = path.join(packageDir('@vladmandic/human'), 'assets', 'samples.jpg');
  for (const region of SHEET_PHOTOS) yield modelInput(sharp(sheet).extract(region), region.width, region.height, size);
  for (let i = 0; i < PRODUCTS.length; i++) yield modelInput(await product(i), 1200, 900, size);
}

/**
 * Runs `calibrationFile` (see calibrationModel) on the first `count` calibration images; one [min, max, ...]
 * array per image.
 */
export async function collectRanges(
  calibrationFile: string,
  spec: ModelSpec,
  host: OnnxHostOptions,
  count: number,
): Promise<Float32Array[]> {
  const session = await OnnxHost.open(calibrationFile, host);
  try {
    const perImage: Float32Array[] = [];
    for await (const rgb of calibrationInputs(spec.size)) {
      if (perImage.length === count) break;
      perImage.push((await session.run({ [session.inputNames[0]]: toInputTensor(rgb, spec) }, RANGES_OUTPUT)).data);
    }
    return perImage;
  } finally {
    await session.close();
  }
}
