/**
 * Alpha matting of a predicted mask: a trimap from the mask (sure subject, sure background, unknown band),
 * then an edge-aware refinement of the unknown band with a colour guided filter (He, Sun and Tang, "Guided
 * Image Filtering"), in its fast form: the linear coefficients are computed at a working resolution of at
 * most WORK_PIXELS and applied to the full-resolution image. In each window the alpha is modelled as a linear
 * function of the colour, alpha = a·I + b, fitted to the predicted mask: where the picture blends subject
 * and background colours (hair, fur, motion blur, a defocused edge), the fitted alpha follows that blend
 * instead of the network's blurred, upscaled guess.
 *
 * Pure functions over typed arrays; box means are running sums (O(1) per pixel whatever the radius).
 */
export interface MattingOptions {
  /** Mask values above this (0..255) are sure subject before erosion (rembg's `af`). */
  foregroundThreshold: number;
  /** Mask values below this are sure background before erosion (rembg's `ab`). */
  backgroundThreshold: number;
  /** Side of the square both sure regions are eroded by, in pixels (rembg's `ae`); widens the unknown band. */
  erodeSize: number;
}

export const UNKNOWN = 128;
/** The coefficients are fitted at most at this many pixels; memory and time stay bounded for large photos. */
const WORK_PIXELS = 1_000_000;
/** Regularisation of the fit, in (0..1 colour)²: larger values trust the mask more than the colours. */
const EPSILON = 1e-3;
/** Window radius at full resolution, at least; grows with the erode size so windows reach both sure sides. */
const MIN_RADIUS = 4;

/** 255 sure subject, 0 sure background, UNKNOWN in between. */
export function trimap(mask: Uint8Array, width: number, height: number, o: MattingOptions): Uint8Array {
  const radius = Math.floor(o.erodeSize / 2);
  const sureSubject = erode(
    binary(mask, (v) => v > o.foregroundThreshold),
    width,
    height,
    radius,
  );
  const sureBackground = erode(
    binary(mask, (v) => v < o.backgroundThreshold),
    width,
    height,
    radius,
  );
  const out = new Uint8Array(mask.length).fill(UNKNOWN);
  for (let i = 0; i < out.length; i++) {
    if (sureSubject[i]) out[i] = 255;
    else if (sureBackground[i]) out[i] = 0;
  }
  return out;
}

/**
 * The matted alpha of `mask` (one byte per pixel) over `rgb` (interleaved, 3 bytes per pixel, same size).
 * Sure regions of the trimap keep 255 / 0; the unknown band gets the guided filter's alpha.
 */
export function matteAlpha(
  rgb: Uint8Array,
  mask: Uint8Array,
  width: number,
  height: number,
  o: MattingOptions,
): Uint8Array {
  if (rgb.length !== mask.length * 3) throw new Error(`rgb has ${rgb.length} bytes for ${mask.length} pixels`);
  const tri = trimap(mask, width, height, o);
  // The filter's input: the trimap's certainties, and the network's soft guess inside the unknown band.
  const guess = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) guess[i] = tri[i] === UNKNOWN ? mask[i] / 255 : tri[i] / 255;

  const scale = Math.max(1, Math.ceil(Math.sqrt((width * height) / WORK_PIXELS)));
  const low = { width: Math.ceil(width / scale), height: Math.ceil(height / scale) };
  const guide = [0, 1, 2].map((c) => downsample(channel(rgb, c, 3), width, height, scale));
  const radius = Math.max(1, Math.round(Math.max(MIN_RADIUS, o.erodeSize) / scale));
  const { a, b } = guidedCoefficients(
    guide,
    downsample(guess, width, height, scale),
    low.width,
    low.height,
    radius,
    EPSILON,
  );

  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    const fy = clamp((y + 0.5) / scale - 0.5, 0, low.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, low.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (tri[i] !== UNKNOWN) {
        out[i] = tri[i];
        continue;
      }
      const fx = clamp((x + 0.5) / scale - 0.5, 0, low.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, low.width - 1);
      const wx = fx - x0;
      const at = (plane: Float32Array) => {
        const top = plane[y0 * low.width + x0] * (1 - wx) + plane[y0 * low.width + x1] * wx;
        const bottom = plane[y1 * low.width + x0] * (1 - wx) + plane[y1 * low.width + x1] * wx;
        return top * (1 - wy) + bottom * wy;
      };
      const q =
        at(a[0]) * (rgb[i * 3] / 255) + at(a[1]) * (rgb[i * 3 + 1] / 255) + at(a[2]) * (rgb[i * 3 + 2] / 255) + at(b);
      out[i] = Math.round(clamp(q, 0, 1) * 255);
    }
  }
  return out;
}

/**
 * Colour guided filter coefficients, already box-averaged: alpha ≈ Σc a[c]·I[c] + b. `guide` holds three
 * planes in 0..1, `p` the input to be filtered.
 */
export function guidedCoefficients(
  guide: Float32Array[],
  p: Float32Array,
  width: number,
  height: number,
  radius: number,
  epsilon: number,
) {
  const mean = (plane: Float32Array) => boxMean(plane, width, height, radius);
  const product = (u: Float32Array, v: Float32Array) => Float32Array.from(u, (value, i) => value * v[i]);
  const meanI = guide.map(mean);
  const meanP = mean(p);
  const covIp = guide.map((plane, c) => minus(mean(product(plane, p)), meanI[c], meanP));
  const variance = (c: number, d: number) => minus(mean(product(guide[c], guide[d])), meanI[c], meanI[d]);
  const [v00, v01, v02, v11, v12, v22] = [
    variance(0, 0),
    variance(0, 1),
    variance(0, 2),
    variance(1, 1),
    variance(1, 2),
    variance(2, 2),
  ];
  const a = [new Float32Array(p.length), new Float32Array(p.length), new Float32Array(p.length)];
  const b = new Float32Array(p.length);
  for (let i = 0; i < p.length; i++) {
    // Σ + εU is symmetric positive definite: its inverse by cofactors.
    const s00 = v00[i] + epsilon,
      s11 = v11[i] + epsilon,
      s22 = v22[i] + epsilon;
    const s01 = v01[i],
      s02 = v02[i],
      s12 = v12[i];
    const c00 = s11 * s22 - s12 * s12,
      c01 = s02 * s12 - s01 * s22,
      c02 = s01 * s12 - s02 * s11;
    const c11 = s00 * s22 - s02 * s02,
      c12 = s01 * s02 - s00 * s12,
      c22 = s00 * s11 - s01 * s01;
    const det = s00 * c00 + s01 * c01 + s02 * c02;
    const [e0, e1, e2] = [covIp[0][i], covIp[1][i], covIp[2][i]];
    const a0 = (c00 * e0 + c01 * e1 + c02 * e2) / det;
    const a1 = (c01 * e0 + c11 * e1 + c12 * e2) / det;
    const a2 = (c02 * e0 + c12 * e1 + c22 * e2) / det;
    a[0][i] = a0;
    a[1][i] = a1;
    a[2][i] = a2;
    b[i] = meanP[i] - a0 * meanI[0][i] - a1 * meanI[1][i] - a2 * meanI[2][i];
  }
  return { a: a.map(mean), b: mean(b) };
}

/**
 * Mean over the (2r+1)² window around each pixel, clipped at the borders (so edges average what exists).
 * Separable running sums: a horizontal pass per row, then a vertical pass that keeps one running sum per column.
 */
export function boxMean(src: Float32Array, width: number, height: number, radius: number): Float32Array {
  const rows = new Float32Array(src.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let sum = 0;
    for (let x = 0; x <= Math.min(radius, width - 1); x++) sum += src[row + x];
    for (let x = 0; x < width; x++) {
      rows[row + x] = sum / (Math.min(x + radius, width - 1) - Math.max(x - radius, 0) + 1);
      if (x + radius + 1 < width) sum += src[row + x + radius + 1];
      if (x - radius >= 0) sum -= src[row + x - radius];
    }
  }
  const out = new Float32Array(src.length);
  const columns = new Float64Array(width);
  for (let y = 0; y <= Math.min(radius, height - 1); y++)
    for (let x = 0; x < width; x++) columns[x] += rows[y * width + x];
  for (let y = 0; y < height; y++) {
    const count = Math.min(y + radius, height - 1) - Math.max(y - radius, 0) + 1;
    const row = y * width;
    const enter = (y + radius + 1) * width;
    const leave = (y - radius) * width;
    for (let x = 0; x < width; x++) {
      out[row + x] = columns[x] / count;
      if (y + radius + 1 < height) columns[x] += rows[enter + x];
      if (y - radius >= 0) columns[x] -= rows[leave + x];
    }
  }
  return out;
}

/** Keeps a pixel only when its whole (2r+1)² window (clipped at the borders) is set. */
export function erode(plane: Float32Array, width: number, height: number, radius: number): Uint8Array {
  if (radius === 0) return Uint8Array.from(plane, (v) => (v > 0 ? 1 : 0));
  const share = boxMean(plane, width, height, radius);
  return Uint8Array.from(share, (v) => (v > 1 - 1e-4 ? 1 : 0));
}

function binary(mask: Uint8Array, test: (v: number) => boolean): Float32Array {
  return Float32Array.from(mask, (v) => (test(v) ? 1 : 0));
}

function channel(data: Uint8Array, c: number, channels: number): Float32Array {
  const out = new Float32Array(data.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels + c] / 255;
  return out;
}

/** Averages `scale`×`scale` blocks (clipped at the right and bottom edges). */
function downsample(plane: Float32Array, width: number, height: number, scale: number): Float32Array {
  if (scale === 1) return plane;
  const lw = Math.ceil(width / scale);
  const lh = Math.ceil(height / scale);
  const sums = new Float32Array(lw * lh);
  const counts = new Uint32Array(lw * lh);
  for (let y = 0; y < height; y++) {
    const ly = Math.floor(y / scale) * lw;
    for (let x = 0; x < width; x++) {
      const j = ly + Math.floor(x / scale);
      sums[j] += plane[y * width + x];
      counts[j]++;
    }
  }
  for (let j = 0; j < sums.length; j++) sums[j] /= counts[j];
  return sums;
}

function minus(meanUv: Float32Array, meanU: Float32Array, meanV: Float32Array): Float32Array {
  for (let i = 0; i < meanUv.length; i++) meanUv[i] -= meanU[i] * meanV[i];
  return meanUv;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
