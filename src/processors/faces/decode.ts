/**
 * Turns BlazeFace's raw SSD outputs into face boxes. All coordinates here are fractions of the square model
 * input (0..1); the detector maps them back to image pixels.
 *
 * The model predicts, for every anchor, a score logit and 16 numbers: box centre offset (x, y), box size
 * (w, h) and six keypoints (eyes, nose, mouth, ears) as (x, y) offsets, all in model-input pixels relative to
 * the anchor centre. Anchors have a fixed unit size, so only their centres matter.
 */

export interface Point {
  x: number;
  y: number;
}

export interface Detection {
  x: number;
  y: number;
  width: number;
  height: number;
  score: number;
  /** right eye, left eye, nose tip, mouth centre, right ear, left ear (the subject's right and left). */
  keypoints: Point[];
}

/** One output head of the network: a square grid and how many anchors sit on each cell. */
export interface AnchorGrid {
  cells: number;
  anchorsPerCell: number;
}

/**
 * The "back camera" BlazeFace at 256x256: a 16x16 grid (stride 16) with 2 anchors per cell, then an 8x8 grid
 * (stride 32) where three SSD layers of 2 anchors each share the cells, 6 per cell. 512 + 384 = 896 anchors.
 */
export const BLAZEFACE_BACK_GRIDS: AnchorGrid[] = [
  { cells: 16, anchorsPerCell: 2 },
  { cells: 8, anchorsPerCell: 6 },
];

/** Anchor centres in the order the model emits its predictions: row by row, then the anchors of a cell. */
export function anchorCentres(grid: AnchorGrid): Point[] {
  const centres: Point[] = [];
  for (let row = 0; row < grid.cells; row++) {
    for (let col = 0; col < grid.cells; col++) {
      for (let k = 0; k < grid.anchorsPerCell; k++) {
        centres.push({ x: (col + 0.5) / grid.cells, y: (row + 0.5) / grid.cells });
      }
    }
  }
  return centres;
}

const VALUES_PER_ANCHOR = 16;
const KEYPOINTS = 6;
// Logits are clipped as MediaPipe's calculator does, so a huge activation cannot overflow exp().
const LOGIT_CLIP = 100;

function sigmoid(logit: number): number {
  const clipped = Math.max(-LOGIT_CLIP, Math.min(LOGIT_CLIP, logit));
  return 1 / (1 + Math.exp(-clipped));
}

/** Decodes one output head: every anchor whose score reaches `minScore` becomes a candidate box. */
export function decodeHead(
  anchors: Point[],
  logits: Float32Array,
  regressors: Float32Array,
  inputSize: number,
  minScore: number,
): Detection[] {
  if (logits.length !== anchors.length || regressors.length !== anchors.length * VALUES_PER_ANCHOR) {
    throw new Error(
      `BlazeFace output does not match its anchors: ${logits.length} scores, ${regressors.length} values, ${anchors.length} anchors`,
    );
  }
  const found: Detection[] = [];
  for (let i = 0; i < anchors.length; i++) {
    const score = sigmoid(logits[i]);
    if (score < minScore) continue;
    found.push(decodeAnchor(anchors[i], regressors.subarray(i * VALUES_PER_ANCHOR), inputSize, score));
  }
  return found;
}

function decodeAnchor(anchor: Point, raw: Float32Array, inputSize: number, score: number): Detection {
  const cx = anchor.x + raw[0] / inputSize;
  const cy = anchor.y + raw[1] / inputSize;
  const width = raw[2] / inputSize;
  const height = raw[3] / inputSize;
  const keypoints: Point[] = [];
  for (let k = 0; k < KEYPOINTS; k++) {
    keypoints.push({ x: anchor.x + raw[4 + k * 2] / inputSize, y: anchor.y + raw[5 + k * 2] / inputSize });
  }
  return { x: cx - width / 2, y: cy - height / 2, width, height, score, keypoints };
}

export function iou(a: Detection, b: Detection): number {
  const left = Math.max(a.x, b.x);
  const top = Math.max(a.y, b.y);
  const right = Math.min(a.x + a.width, b.x + b.width);
  const bottom = Math.min(a.y + a.height, b.y + b.height);
  const overlap = Math.max(0, right - left) * Math.max(0, bottom - top);
  const union = a.width * a.height + b.width * b.height - overlap;
  return union > 0 ? overlap / union : 0;
}

/**
 * Weighted non-maximum suppression: neighbouring anchors fire on the same face, so each cluster of boxes that
 * overlap the strongest one is blended into one box (weighted by score), which is steadier than keeping
 * the single best anchor.
 */
export function mergeOverlapping(candidates: Detection[], minOverlap = 0.3): Detection[] {
  let remaining = [...candidates].sort((a, b) => b.score - a.score);
  const merged: Detection[] = [];
  while (remaining.length > 0) {
    const best = remaining[0];
    const cluster = remaining.filter((d) => iou(best, d) >= minOverlap);
    remaining = remaining.filter((d) => iou(best, d) < minOverlap);
    merged.push(blend(cluster, best.score));
  }
  return merged;
}

function blend(cluster: Detection[], score: number): Detection {
  const total = cluster.reduce((sum, d) => sum + d.score, 0);
  const mean = (pick: (d: Detection) => number) => cluster.reduce((sum, d) => sum + pick(d) * d.score, 0) / total;
  return {
    x: mean((d) => d.x),
    y: mean((d) => d.y),
    width: mean((d) => d.width),
    height: mean((d) => d.height),
    score,
    keypoints: cluster[0].keypoints.map((_, k) => ({
      x: mean((d) => d.keypoints[k].x),
      y: mean((d) => d.keypoints[k].y),
    })),
  };
}
