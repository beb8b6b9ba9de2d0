import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { composeCutout, type CutoutOptions } from '../../src/processors/cutout/compose.js';
import { decontaminate } from '../../src/processors/cutout/decontaminate.js';
import { planFrame, subjectBox, SUBJECT_THRESHOLD } from '../../src/processors/cutout/framing.js';
import { boundingBox, type Box } from '../../src/processors/models/mask.js';
import { createRemoveBackground, type RemoveBackgroundProcessor } from '../../src/processors/remove-background.js';
import { TEST_MODELS_DIR } from '../support/models.js';
import { PORTRAITS, portraitJpeg } from '../support/portraits.js';
import { runJob } from '../support/processors.js';
import { COMPOSITE_NAMES, softColourError, softEdgeComposite, withAlpha } from '../support/soft-edges.js';
import { syntheticScene, type Scene } from '../support/synthetic.js';

/** Options as the schema's defaults leave them, with `overrides` laid over. */
function cutoutOptions(overrides: Partial<CutoutOptions> = {}): CutoutOptions {
  return {
    crop: false,
    cropMargin: 0,
    scale: 'original',
    onlyMask: false,
    format: 'png',
    decontaminate: true,
    ...overrides,
  };
}

/** The box of alpha ≥ 128 (the subject threshold) in an encoded image's alpha, or its grey band for a mask. */
async function measuredBox(encoded: Buffer): Promise<Box> {
  const meta = await sharp(encoded).metadata();
  const band = meta.channels === 1 ? 0 : 3;
  const plane = await sharp(encoded).extractChannel(band).raw().toBuffer();
  const box = boundingBox(plane, meta.width!, meta.height!, SUBJECT_THRESHOLD);
  expect(box).toBeDefined();
  return box!;
}

function expectWithin(actual: Box, expected: Box, slack = 1) {
  for (const key of ['left', 'top', 'width', 'height'] as const) {
    expect(
      Math.abs(actual[key] - expected[key]),
      `${key}: ${JSON.stringify({ actual, expected })}`,
    ).toBeLessThanOrEqual(slack);
  }
}

/** A scene's photo with its true mask as alpha: framing judged without the model's own error. */
async function truthCutout(scene: Scene): Promise<Buffer> {
  const rgb = await sharp(scene.image).removeAlpha().raw().toBuffer();
  return Buffer.from(withAlpha(rgb, scene.mask));
}

describe('planFrame', () => {
  const subject = { left: 100, top: 50, width: 300, height: 600 };
  const image = { width: 1000, height: 800 };

  it('scales the larger side to the percent of a square canvas and centres it', () => {
    const frame = planFrame(subject, image, {
      crop: false,
      cropMargin: 0,
      scale: 85,
      canvas: { width: 2000, height: 2000 },
    });
    expect(frame.canvas).toEqual({ width: 2000, height: 2000 });
    expect(frame.foreground).toEqual({ left: 575, top: 150, width: 850, height: 1700 });
    // The subject's top-left pixel lands on the box's corner.
    expect(subject.left * frame.scale + frame.offsetX).toBeCloseTo(575, 6);
  });

  it('crops with CSS-ordered margins and places "x% y%" against the edges', () => {
    const cropped = planFrame(subject, image, { crop: true, cropMargin: '10px 20px 30px 40px', scale: 'original' });
    expect(cropped).toMatchObject({
      canvas: { width: 360, height: 640 },
      foreground: { left: 40, top: 10, width: 300, height: 600 },
      crop: { left: 60, top: 40, width: 360, height: 640 },
    });
    const corner = planFrame(subject, image, {
      crop: false,
      cropMargin: 0,
      scale: 50,
      position: '0% 100%',
      canvas: { aspect: '1:1', width: 1000 },
    });
    expect(corner.foreground).toEqual({ left: 0, top: 500, width: 250, height: 500 });
  });

  it('grows the frame to an aspect, and scales everything down past maxMegapixels', () => {
    const square = planFrame(subject, image, {
      crop: true,
      cropMargin: 0,
      scale: 'original',
      canvas: { aspect: '1:1' },
    });
    expect(square).toMatchObject({
      canvas: { width: 600, height: 600 },
      foreground: { left: 150, top: 0, width: 300, height: 600 },
    });
    const small = planFrame(subject, image, { crop: false, cropMargin: 0, scale: 'original', maxMegapixels: 0.2 });
    expect(small.canvas).toEqual({ width: 500, height: 400 });
    expect(small.foreground).toEqual({ left: 50, top: 25, width: 150, height: 300 });
  });
});

function expectBox(actual: Box | undefined, expected: Box) {
  expect(actual).toBeDefined();
  for (const key of ['left', 'top', 'width', 'height'] as const) expect(actual![key]).toBeCloseTo(expected[key], 2);
}

describe('subjectBox', () => {
  it('leaves specks out of the box but keeps a second object of similar size', () => {
    const [width, height] = [200, 100];
    const alpha = new Uint8Array(width * height);
    const fill = (x0: number, y0: number, w: number, h: number) => {
      for (let y = y0; y < y0 + h; y++) alpha.fill(255, y * width + x0, y * width + x0 + w);
    };
    fill(20, 20, 40, 60); // 2400 px
    fill(190, 2, 3, 3); // a speck of 9 px: below 1 % of the largest region
    expectBox(subjectBox(alpha, width, height), { left: 20, top: 20, width: 40, height: 60 });
    fill(120, 40, 30, 50); // a second shoe
    expectBox(subjectBox(alpha, width, height), { left: 20, top: 20, width: 130, height: 70 });
    // Diagonal neighbours join one region: a staircase is one object, not many specks.
    alpha.fill(0);
    for (let i = 0; i < 80; i++) alpha[(10 + (i >> 2)) * width + 10 + i] = 255;
    expectBox(subjectBox(alpha, width, height), { left: 10, top: 10, width: 80, height: 20 });
  });

  it('places a soft edge where its alpha crosses one half, between pixels', () => {
    const [width, height] = [40, 10];
    const alpha = new Uint8Array(width * height);
    // Columns 10..29 solid, a ramp outside: 64 at column 9 and 30, 192 at 10 and 29.
    for (let y = 0; y < height; y++) {
      for (let x = 10; x < 30; x++) alpha[y * width + x] = 255;
      alpha[y * width + 9] = 64;
      alpha[y * width + 10] = 192;
      alpha[y * width + 29] = 192;
      alpha[y * width + 30] = 64;
    }
    // Centres 9.5 (64) and 10.5 (192): 128 is crossed half-way, at 10.0; on the right at 30.0.
    expectBox(subjectBox(alpha, width, height), { left: 10, top: 0.002, width: 20, height: 9.996 });
  });
});

describe('decontaminate on composites with a known subject colour and alpha', () => {
  it.each(COMPOSITE_NAMES.map((name, index) => [name, index]))(
    '%s: the soft pixels come much closer to the subject colour, at working size and above it',
    async (_, index) => {
      const composite = await softEdgeComposite(index as number, 240, 180);
      const without = softColourError(withAlpha(composite.rgb, composite.alpha), composite);
      const dense = withAlpha(composite.rgb, composite.alpha);
      decontaminate(dense, composite.width, composite.height);
      const large = withAlpha(composite.rgb, composite.alpha);
      decontaminate(large, composite.width, composite.height, 5000);
      expect(softColourError(dense, composite)).toBeLessThan(without / 3);
      expect(softColourError(large, composite)).toBeLessThan(without / 3);
      // Sure subject and sure background keep their bytes.
      let changed = 0;
      for (let i = 0; i < composite.alpha.length; i++) {
        if (composite.alpha[i] > 0 && composite.alpha[i] < 255) continue;
        for (let c = 0; c < 3; c++) if (dense[i * 4 + c] !== composite.rgb[i * 3 + c]) changed++;
      }
      expect(changed).toBe(0);
    },
  );
});

describe('composeCutout on synthetic products with their true mask', () => {
  let bottle: Scene;
  beforeAll(async () => {
    bottle = await syntheticScene(0, 640, 480);
  });

  it('puts the product on a 2000 px square at 85 %, centred, within 1 px', async () => {
    const options = cutoutOptions({ scale: 85, canvas: { width: 2000, height: 2000 } });
    const cutout = await composeCutout(await truthCutout(bottle), bottle.width, bottle.height, options, 40e6);
    const png = await cutout.image.png().toBuffer();
    const box = await measuredBox(png);
    expect(Math.max(box.width, box.height)).toBeGreaterThanOrEqual(1699);
    expect(Math.max(box.width, box.height)).toBeLessThanOrEqual(1701);
    expectWithin(box, {
      left: (2000 - box.width) / 2,
      top: (2000 - box.height) / 2,
      width: box.width,
      height: box.height,
    });
    expectWithin(box, cutout.foreground!);
  });

  it('lays the shadow under the subject only: behind its solid pixels, below and around it, nowhere else', async () => {
    const base = cutoutOptions({ crop: true, cropMargin: 25, background: '#ffffff' });
    const shadow = { opacity: 0.6, blur: 1, offsetX: 0, offsetY: 5 };
    const compose = async (extra: Partial<CutoutOptions>) => {
      const cutout = await composeCutout(
        await truthCutout(bottle),
        bottle.width,
        bottle.height,
        { ...base, ...extra },
        40e6,
      );
      const { data, info } = await cutout.image.raw().toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height, foreground: cutout.foreground! };
    };
    const [plain, shaded, mask] = [
      await compose({}),
      await compose({ shadow }),
      await compose({ onlyMask: true, background: undefined }),
    ];
    const { width, height, foreground } = plain;
    const unit = Math.max(foreground.width, foreground.height) / 100;
    // Where the shadow may reach: the subject's box moved down by the offset, grown by three blur sigmas.
    const reach = {
      left: foreground.left - 3 * unit,
      right: foreground.left + foreground.width + 3 * unit,
      top: foreground.top + 5 * unit - 3 * unit,
      bottom: foreground.top + foreground.height + 5 * unit + 3 * unit,
    };
    let belowSubject = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const darker = plain.data[i * 3] - shaded.data[i * 3];
        if (mask.data[i] === 255) expect(darker, `solid subject pixel ${x},${y}`).toBe(0);
        if (darker <= 2) continue;
        expect(x >= reach.left && x <= reach.right && y >= reach.top && y <= reach.bottom, `${x},${y}`).toBe(true);
        if (y >= foreground.top + foreground.height) belowSubject++;
      }
    }
    expect(belowSubject).toBeGreaterThan(foreground.width);
  });
});

describe('remove-background framing with the default model', () => {
  let proc: RemoveBackgroundProcessor;
  beforeAll(() => {
    proc = createRemoveBackground(loadConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR, PIXQ_LOG_LEVEL: 'silent' }));
  });
  afterAll(async () => {
    await proc?.close();
  });

  it('crops a real portrait with a 20 px margin and, as a mask, gives one channel', async () => {
    const photo = await portraitJpeg(PORTRAITS[0]);
    const run = await runJob(proc, photo, { crop: true, cropMargin: '20px', onlyMask: true });
    const meta = await sharp(run.data).metadata();
    expect(meta).toMatchObject({ channels: 1, hasAlpha: false });
    const box = await measuredBox(run.data);
    const foreground = run.result.result?.foreground as Box;
    expectWithin(box, foreground);
    expect(Math.abs(box.left - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(box.top - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(meta.width! - (box.left + box.width) - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(meta.height! - (box.top + box.height) - 20)).toBeLessThanOrEqual(1);
  }, 120_000);

  it('centres a synthetic product at 85 % of a square and answers its box', async () => {
    const scene = await syntheticScene(2, 640, 480);
    const run = await runJob(proc, scene.image, { scale: 85, canvas: { width: 1000, height: 1000 } });
    expect(run.result.outputs[0]).toMatchObject({ width: 1000, height: 1000 });
    const box = await measuredBox(run.data);
    expect(Math.abs(Math.max(box.width, box.height) - 850)).toBeLessThanOrEqual(1);
    expectWithin(box, {
      left: (1000 - box.width) / 2,
      top: (1000 - box.height) / 2,
      width: box.width,
      height: box.height,
    });
    expectWithin(box, run.result.result?.foreground as Box);
  }, 120_000);
});
