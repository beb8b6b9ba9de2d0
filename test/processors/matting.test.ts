import os from 'node:os';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { boxMean, erode, matteAlpha, trimap, UNKNOWN } from '../../src/processors/models/matting.js';
import { createRemoveBackground, type RemoveBackgroundProcessor } from '../../src/processors/remove-background.js';
import { runJob } from '../support/processors.js';
import { alphaOf, meanAlphaError, softScene, type SoftScene } from '../support/synthetic.js';
import { TEST_MODELS_DIR } from '../support/models.js';

const MATTING = { foregroundThreshold: 240, backgroundThreshold: 10, erodeSize: 10 };
const SOFT_SCENES = 2;

describe('box mean and erosion', () => {
  it('equal the brute-force window mean, clipped at the borders, for any radius', () => {
    const [width, height] = [23, 17];
    const plane = Float32Array.from({ length: width * height }, (_, i) => ((i * 7919) % 101) / 100);
    for (const radius of [0, 1, 3, 11, 40]) {
      const fast = boxMean(plane, width, height, radius);
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          let [sum, n] = [0, 0];
          for (let v = Math.max(0, y - radius); v <= Math.min(height - 1, y + radius); v++) {
            for (let u = Math.max(0, x - radius); u <= Math.min(width - 1, x + radius); u++)
              [sum, n] = [sum + plane[v * width + u], n + 1];
          }
          expect(fast[y * width + x]).toBeCloseTo(sum / n, 5);
        }
      }
    }
  });

  it('erodes a square by the radius on every side that is not the frame', () => {
    const [width, height] = [20, 20];
    const square = Float32Array.from({ length: width * height }, (_, i) =>
      i % width >= 5 && Math.floor(i / width) >= 5 ? 1 : 0,
    );
    const eroded = erode(square, width, height, 2);
    const kept = [...eroded]
      .map((v, i) => (v ? [i % width, Math.floor(i / width)] : null))
      .filter(Boolean) as number[][];
    expect(Math.min(...kept.map(([x]) => x))).toBe(7);
    expect(Math.max(...kept.map(([x]) => x))).toBe(19);
    expect(kept).toHaveLength(13 * 13);
  });
});

describe('trimap', () => {
  it('marks sure subject above af, sure background below ab, both eroded by ae, the rest unknown', () => {
    const width = 40;
    const mask = Uint8Array.from({ length: width * 10 }, (_, i) => Math.min(255, (i % width) * 8));
    const row = [...trimap(mask, width, 10, { foregroundThreshold: 240, backgroundThreshold: 10, erodeSize: 4 })].slice(
      width * 5,
      width * 6,
    );
    // values: x*8 → background for x < 2 (eroded by 2: x < 0 ... none), subject for x >= 31 (eroded: x >= 33).
    expect(row.slice(0, 2)).toEqual([UNKNOWN, UNKNOWN]);
    expect(row.slice(2, 33).every((v) => v === UNKNOWN)).toBe(true);
    expect(row.slice(33).every((v) => v === 255)).toBe(true);
    const wide = trimap(
      Uint8Array.from({ length: width * 10 }, (_, i) => (i % width < 20 ? 0 : 255)),
      width,
      10,
      { foregroundThreshold: 240, backgroundThreshold: 10, erodeSize: 6 },
    );
    expect([...wide.slice(0, width)].map((v) => (v === UNKNOWN ? 'u' : v === 255 ? 's' : 'b')).join('')).toBe(
      'b'.repeat(17) + 'u'.repeat(6) + 's'.repeat(17),
    );
  });
});

/** What a segmentation network sees and answers: the truth at 320 × 320, cut at half and scaled back up smoothly. */
async function coarseGuess(scene: SoftScene): Promise<Uint8Array> {
  const hard = await sharp(Buffer.from(scene.alpha), { raw: { width: scene.width, height: scene.height, channels: 1 } })
    .resize(320, 320, { fit: 'fill' })
    .threshold(128)
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  const back = await sharp(hard, { raw: { width: 320, height: 320, channels: 1 } })
    .resize(scene.width, scene.height, { fit: 'fill', kernel: 'linear' })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  return new Uint8Array(back);
}

async function rgbOf(image: Buffer): Promise<Uint8Array> {
  return new Uint8Array(await sharp(image).removeAlpha().raw().toBuffer());
}

describe('matteAlpha on soft edges with a known alpha', () => {
  it('brings a coarse mask closer to the true soft alpha, also at a resolution above the working size', async () => {
    for (const [index, width, height] of [
      [0, 640, 480],
      [3, 1600, 1200],
    ]) {
      const scene = await softScene(index, width, height, 5);
      const guess = await coarseGuess(scene);
      const matted = matteAlpha(await rgbOf(scene.image), guess, width, height, MATTING);
      const before = meanAlphaError(guess, scene.alpha);
      const after = meanAlphaError(matted, scene.alpha);
      console.log(
        `matteAlpha ${scene.name} ${width}x${height}: mean |alpha error| ${before.toFixed(3)} -> ${after.toFixed(3)}`,
      );
      expect(after).toBeLessThan(before);
    }
  });
});

describe('remove-background with alphaMatting (rembg a/af/ab/ae), default model', () => {
  let proc: RemoveBackgroundProcessor;
  let scenes: SoftScene[];

  beforeAll(async () => {
    proc = createRemoveBackground(
      loadConfig({
        PIXQ_DATA_DIR: os.tmpdir(),
        PIXQ_MODELS_DIR: TEST_MODELS_DIR,
        PIXQ_MODEL_DOWNLOAD: 'false',
        PIXQ_LOG_LEVEL: 'silent',
      }),
    );
    scenes = await Promise.all(Array.from({ length: SOFT_SCENES }, (_, i) => softScene(i * 3, 480, 360, 4)));
  });

  afterAll(async () => {
    await proc?.close();
  });

  it('lowers the mean absolute alpha error on a synthetic set with known soft alpha', async () => {
    const errors = { plain: [] as number[], matted: [] as number[] };
    for (const scene of scenes) {
      const plain = await alphaOf((await runJob(proc, scene.image)).data);
      const matted = await alphaOf((await runJob(proc, scene.image, { alphaMatting: MATTING })).data);
      errors.plain.push(meanAlphaError(plain, scene.alpha));
      errors.matted.push(meanAlphaError(matted, scene.alpha));
    }
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    console.log(
      `mean |alpha error| (0..255) over ${scenes.length} soft scenes: without matting ${mean(errors.plain).toFixed(3)}, with a=true ${mean(errors.matted).toFixed(3)}`,
      scenes.map((s, i) => `${s.name}: ${errors.plain[i].toFixed(2)} -> ${errors.matted[i].toFixed(2)}`),
    );
    expect(mean(errors.matted)).toBeLessThan(mean(errors.plain));
  }, 900_000);
});
