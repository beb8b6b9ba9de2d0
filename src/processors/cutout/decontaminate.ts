/**
 * Colour decontamination of a cut-out's soft edge. Where 0 < alpha < 1 (hair, fur, motion blur, glass) a pixel
 * of the photo is a blend, I = alpha·F + (1 − alpha)·B, of the subject's colour F and the old background's B.
 * Keeping I as the cut-out's colour carries B along: on a new background the edge shows a fringe of the old one.
 * This module re-estimates F there, by the multi-level fast foreground estimation of Germer, Uelwer, Conrad and
 * Harmeling ("Fast Multi-Level Foreground Estimation", ICPR 2020), written here from the paper:
 *
 * - F and B minimise Σ (alpha·F + (1 − alpha)·B − I)² + Σ over 4-neighbours (ε + |Δalpha|)·(‖ΔF‖² + ‖ΔB‖²):
 *   the blend must reproduce the photo, and both colours vary smoothly except across alpha edges.
 * - Each pixel's best F and B given its neighbours is a 2×2 linear system (the same for the three channels);
 *   sweeping the image and solving it in place (Gauss–Seidel) converges slowly at one resolution, so the sweeps
 *   run coarse to fine over a pyramid of 2×2 means: a few sweeps per level, each level starting from the coarser
 *   one's answer.
 * - Memory and time stay bounded: the pyramid's finest level has at most WORK_PIXELS; a larger photo gets one
 *   last local solve per soft pixel at full resolution, from the working level's F and B sampled bilinearly.
 *   Large levels are swept only near soft pixels (BAND_RADIUS), so a thin edge costs little on a big photo.
 *
 * Only pixels with 0 < alpha < 255 change; sure subject keeps the photo's colour exactly. No npm library does
 * this on raw buffers (pymatting is Python), hence by hand.
 */

/** The finest level solved densely has at most this many pixels. */
export const WORK_PIXELS = 2_000_000;
/** ε: keeps the system solvable where alpha is flat, and F and B smooth there. */
const REGULARISATION = 1e-5;
/** Sweeps per level; small levels (side ≤ SMALL_SIDE) are cheap and get more. */
const SWEEPS = 2;
const SMALL_SWEEPS = 10;
const SMALL_SIDE = 32;
/**
 * Levels above this many pixels are solved only within BAND_RADIUS of a soft pixel, as if the band were the whole
 * picture: a product's soft edge is a thin band, so the fine levels cost what the band costs, not the photo.
 */
const BAND_LEVEL_PIXELS = 65_536;
const BAND_RADIUS = 16;

/** One pyramid level: the photo and alpha in 0..1, and the F and B being solved for (3 floats per pixel). */
interface Level {
  width: number;
  height: number;
  image: Float32Array;
  alpha: Float32Array;
  fg: Float32Array;
  bg: Float32Array;
}

/**
 * Replaces the colour of every soft pixel of `rgba` (interleaved, 4 bytes per pixel: the photo's colour and the
 * cut-out's alpha) by the estimated foreground colour, in place. `workPixels` is for tests of the large-photo path.
 */
export function decontaminate(rgba: Uint8Array, width: number, height: number, workPixels = WORK_PIXELS): void {
  if (rgba.length !== width * height * 4) throw new Error(`rgba has ${rgba.length} bytes for ${width}x${height}`);
  if (!hasSoftPixels(rgba)) return;
  const factor = Math.max(1, Math.ceil(Math.sqrt((width * height) / workPixels)));
  const working = levelFromRgba(rgba, width, height, factor);
  solvePyramid(working);
  if (factor === 1) writeForeground(rgba, working);
  else refineAtFullSize(rgba, width, height, working, factor);
}

function hasSoftPixels(rgba: Uint8Array): boolean {
  for (let p = 3; p < rgba.length; p += 4) if (rgba[p] > 0 && rgba[p] < 255) return true;
  return false;
}

/** The photo and alpha of `rgba` (bytes) as a level, in means of `factor`×`factor` blocks; never a full-size copy. */
function levelFromRgba(rgba: Uint8Array, width: number, height: number, factor: number): Level {
  return blockMeans({ width, height, colour: rgba, stride: 4, alpha: rgba, alphaStride: 4, alphaAt: 3 }, factor, 255);
}

function halve(level: Level): Level {
  const { width, height, image, alpha } = level;
  return blockMeans({ width, height, colour: image, stride: 3, alpha, alphaStride: 1, alphaAt: 0 }, 2, 1);
}

/** A picture to average: colour channels every `stride` values, alpha every `alphaStride` from `alphaAt`. */
interface Planes {
  width: number;
  height: number;
  colour: Uint8Array | Float32Array;
  stride: number;
  alpha: Uint8Array | Float32Array;
  alphaStride: number;
  alphaAt: number;
}

/**
 * Means of `factor`×`factor` blocks (clipped at the right and bottom edges), values divided by `unit`. Averaging
 * the photo and alpha keeps the blend equation: where F and B are locally constant, the mean photo is
 * mean(alpha)·F + (1 − mean(alpha))·B.
 */
function blockMeans(source: Planes, factor: number, unit: number): Level {
  const { width, height, colour, stride, alpha: a, alphaStride, alphaAt } = source;
  const w = Math.ceil(width / factor);
  const h = Math.ceil(height / factor);
  const n = w * h;
  const image = new Float32Array(n * 3);
  const alpha = new Float32Array(n);
  const counts = new Uint32Array(n);
  const block = Int32Array.from({ length: width }, (_, x) => Math.floor(x / factor));
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / factor) * w;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const j = row + block[x];
      image[j * 3] += colour[i * stride];
      image[j * 3 + 1] += colour[i * stride + 1];
      image[j * 3 + 2] += colour[i * stride + 2];
      alpha[j] += a[i * alphaStride + alphaAt];
      counts[j]++;
    }
  }
  for (let j = 0; j < n; j++) {
    const scale = 1 / (counts[j] * unit);
    image[j * 3] *= scale;
    image[j * 3 + 1] *= scale;
    image[j * 3 + 2] *= scale;
    alpha[j] *= scale;
  }
  return { width: w, height: h, image, alpha, fg: new Float32Array(n * 3), bg: new Float32Array(n * 3) };
}

/** Solves F and B on `finest`, coarse to fine: halvings down to one pixel, then sweeps on the way back up. */
function solvePyramid(finest: Level): void {
  const levels = [finest];
  while (levels[0].width > 1 || levels[0].height > 1) levels.unshift(halve(levels[0]));
  // The coarsest level is one pixel: both colours start as its mean colour.
  levels[0].fg.set(levels[0].image);
  levels[0].bg.set(levels[0].image);
  for (const [index, level] of levels.entries()) {
    if (index === 0) continue; // one pixel, no neighbours: nothing to solve
    const active = level.width * level.height > BAND_LEVEL_PIXELS ? nearSoftPixels(level, BAND_RADIUS) : undefined;
    inheritFromCoarser(level, levels[index - 1], active);
    const sweeps = Math.min(level.width, level.height) <= SMALL_SIDE ? SMALL_SWEEPS : SWEEPS;
    for (let s = 0; s < sweeps; s++) sweep(level, active);
  }
}

/** Each (active) pixel starts from the F and B of the coarser pixel covering it. */
function inheritFromCoarser(level: Level, coarse: Level, active: Uint8Array | undefined): void {
  for (let y = 0; y < level.height; y++) {
    const from = (y >> 1) * coarse.width;
    for (let x = 0; x < level.width; x++) {
      if (active && !active[y * level.width + x]) continue;
      const i = (y * level.width + x) * 3;
      const j = (from + (x >> 1)) * 3;
      for (let c = 0; c < 3; c++) {
        level.fg[i + c] = coarse.fg[j + c];
        level.bg[i + c] = coarse.bg[j + c];
      }
    }
  }
}

/**
 * One Gauss–Seidel sweep in raster order: each pixel's F and B solved given its neighbours' current values. The
 * 2×2 system of a pixel with alpha a: [a² + W, a(1−a); a(1−a), (1−a)² + W]·[F; B] = [a·I + Σw·Fn; (1−a)·I + Σw·Bn],
 * with w = ε + |a − a_n| per neighbour and W their sum (the same matrix for the three channels). Written out
 * without helpers: this loop is the whole cost.
 */
function sweep(level: Level, active: Uint8Array | undefined): void {
  const { width, height, image, alpha, fg, bg } = level;
  const acc = new Float64Array(7); // W, Σw·Fn (3), Σw·Bn (3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (active && !active[i]) continue;
      const a = alpha[i];
      let W = 0;
      let f0 = 0;
      let f1 = 0;
      let f2 = 0;
      let b0 = 0;
      let b1 = 0;
      let b2 = 0;
      for (let k = 0; k < 4; k++) {
        let n: number;
        if (k === 0) {
          if (x === 0) continue;
          n = i - 1;
        } else if (k === 1) {
          if (x === width - 1) continue;
          n = i + 1;
        } else if (k === 2) {
          if (y === 0) continue;
          n = i - width;
        } else {
          if (y === height - 1) continue;
          n = i + width;
        }
        if (active && !active[n]) continue; // outside the band: as if past the edge
        const w = REGULARISATION + Math.abs(a - alpha[n]);
        const j = n * 3;
        W += w;
        f0 += w * fg[j];
        f1 += w * fg[j + 1];
        f2 += w * fg[j + 2];
        b0 += w * bg[j];
        b1 += w * bg[j + 1];
        b2 += w * bg[j + 2];
      }
      acc[0] = W;
      acc[1] = f0;
      acc[2] = f1;
      acc[3] = f2;
      acc[4] = b0;
      acc[5] = b1;
      acc[6] = b2;
      solveInto(a, image, i * 3, acc, fg, bg, i * 3);
    }
  }
}

/** 1 for the pixels within `radius` (in x and in y) of a pixel with 0 < alpha < 1: two passes of a running distance. */
function nearSoftPixels(level: Level, radius: number): Uint8Array {
  const { width, height, alpha } = level;
  const rows = new Uint8Array(width * height);
  for (let i = 0; i < alpha.length; i++) rows[i] = alpha[i] > 1e-6 && alpha[i] < 1 - 1e-6 ? 1 : 0;
  spread(rows, height, width, 1, width, radius);
  spread(rows, width, height, width, 1, radius);
  return rows;
}

/** Along each of `lines` lines of `length` pixels (`step` apart, lines `stride` apart): set within `radius` of a set pixel. */
function spread(plane: Uint8Array, lines: number, length: number, step: number, stride: number, radius: number): void {
  const source = plane.slice();
  for (let l = 0; l < lines; l++) {
    const base = l * stride;
    let last = -Infinity;
    for (let k = 0; k < length; k++) {
      if (source[base + k * step]) last = k;
      if (k - last <= radius) plane[base + k * step] = 1;
    }
    let next = Infinity;
    for (let k = length - 1; k >= 0; k--) {
      if (source[base + k * step]) next = k;
      if (next - k <= radius) plane[base + k * step] = 1;
    }
  }
}

/** Solves one pixel's system given `acc` (see sweep) and writes F and B, clamped to 0..1, at `out`. */
function solveInto(
  a: number,
  image: Float32Array,
  src: number,
  acc: Float64Array,
  fg: Float32Array,
  bg: Float32Array,
  out: number,
): void {
  const b = 1 - a;
  const a00 = a * a + acc[0];
  const a11 = b * b + acc[0];
  const a01 = a * b;
  const inverse = 1 / (a00 * a11 - a01 * a01);
  for (let c = 0; c < 3; c++) {
    const rf = a * image[src + c] + acc[1 + c];
    const rb = b * image[src + c] + acc[4 + c];
    fg[out + c] = clamp01(inverse * (a11 * rf - a01 * rb));
    bg[out + c] = clamp01(inverse * (a00 * rb - a01 * rf));
  }
}

function writeForeground(rgba: Uint8Array, level: Level): void {
  for (let i = 0; i < level.alpha.length; i++) {
    const a = rgba[i * 4 + 3];
    if (a === 0 || a === 255) continue;
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = Math.round(level.fg[i * 3 + c] * 255);
  }
}

/**
 * Full resolution above the working size: every soft pixel solves its system once more, with its own photo
 * colour and alpha, and the working level's F and B (bilinear) at its neighbours. Sure neighbours bring their
 * own colour: a sure-subject pixel's F is its photo colour, a sure-background pixel's B too.
 */
function refineAtFullSize(rgba: Uint8Array, width: number, height: number, working: Level, factor: number): void {
  const sample = bilinearSampler(working, factor);
  const acc = new Float64Array(7);
  const image = new Float32Array(3);
  const fg = new Float32Array(3);
  const bg = new Float32Array(3);
  const add = (a: number, x: number, y: number) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const p = (y * width + x) * 4;
    const an = rgba[p + 3] / 255;
    sample(x, y, fg, bg);
    if (an === 1) for (let c = 0; c < 3; c++) fg[c] = rgba[p + c] / 255;
    if (an === 0) for (let c = 0; c < 3; c++) bg[c] = rgba[p + c] / 255;
    const w = REGULARISATION + Math.abs(a - an);
    acc[0] += w;
    for (let c = 0; c < 3; c++) {
      acc[1 + c] += w * fg[c];
      acc[4 + c] += w * bg[c];
    }
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      if (rgba[p + 3] === 0 || rgba[p + 3] === 255) continue;
      const a = rgba[p + 3] / 255;
      acc.fill(0);
      add(a, x - 1, y);
      add(a, x + 1, y);
      add(a, x, y - 1);
      add(a, x, y + 1);
      for (let c = 0; c < 3; c++) image[c] = rgba[p + c] / 255;
      solveInto(a, image, 0, acc, fg, bg, 0);
      for (let c = 0; c < 3; c++) rgba[p + c] = Math.round(fg[c] * 255);
    }
  }
}

/** Writes the working level's F and B at full-resolution pixel (x, y), bilinearly, into `fg` and `bg`. */
function bilinearSampler(level: Level, factor: number) {
  const { width, height } = level;
  return (x: number, y: number, fg: Float32Array, bg: Float32Array) => {
    const fx = Math.min(width - 1, Math.max(0, (x + 0.5) / factor - 0.5));
    const fy = Math.min(height - 1, Math.max(0, (y + 0.5) / factor - 0.5));
    const x0 = Math.floor(fx);
    const y0 = Math.floor(fy);
    const x1 = Math.min(x0 + 1, width - 1);
    const y1 = Math.min(y0 + 1, height - 1);
    const wx = fx - x0;
    const wy = fy - y0;
    const [j00, j01, j10, j11] = [
      (y0 * width + x0) * 3,
      (y0 * width + x1) * 3,
      (y1 * width + x0) * 3,
      (y1 * width + x1) * 3,
    ];
    const [w00, w01, w10, w11] = [(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy];
    for (let c = 0; c < 3; c++) {
      fg[c] = level.fg[j00 + c] * w00 + level.fg[j01 + c] * w01 + level.fg[j10 + c] * w10 + level.fg[j11 + c] * w11;
      bg[c] = level.bg[j00 + c] * w00 + level.bg[j01 + c] * w01 + level.bg[j10 + c] * w10 + level.bg[j11 + c] * w11;
    }
  };
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
