import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createFaceCrop, type FaceCropOptions } from '../../src/processors/face-crop.js';
import { fitToImage, idealCrop, planCut, toPixels } from '../../src/processors/faces/crop.js';
import {
  BLAZEFACE_BACK_GRIDS,
  anchorCentres,
  decodeHead,
  mergeOverlapping,
} from '../../src/processors/faces/decode.js';
import { detectFaces } from '../../src/processors/faces/detector.js';
import { parseOptions } from '../../src/processors/options.js';
import {
  PORTRAITS,
  TRIO,
  contains,
  overlap,
  portraitJpeg,
  shapesPng,
  sheetRegionJpeg,
  testContext,
  type Region,
} from '../support/portraits.js';
import { rejection } from '../support/errors.js';

const processor = createFaceCrop(loadConfig({}));

function options(raw: unknown): FaceCropOptions {
  return parseOptions(processor, raw);
}

async function run(input: Buffer, raw: unknown = {}) {
  const ctx = testContext(input, options(raw));
  const result = await processor.run(ctx);
  return { ctx, result, faces: result.result?.faces as { box: Region; score: number; crop: Region }[] };
}

/** Mean absolute difference of two same-sized images in grey levels (0..255). */
async function greyDifference(a: Buffer, b: Buffer, width: number, height: number): Promise<number> {
  const grey = (img: Buffer) => sharp(img).resize(width, height, { fit: 'fill' }).greyscale().raw().toBuffer();
  const [pa, pb] = await Promise.all([grey(a), grey(b)]);
  let sum = 0;
  for (let i = 0; i < pa.length; i++) sum += Math.abs(pa[i] - pb[i]);
  return sum / pa.length;
}

describe('face-crop on single-person photos', () => {
  const inputs = new Map<string, Buffer>();
  beforeAll(async () => {
    for (const p of PORTRAITS) inputs.set(p.name, await portraitJpeg(p));
  });

  it.each(PORTRAITS.map((p) => [p.name, p] as const))(
    '%s: finds the face and crops around it at 3:4',
    async (_, portrait) => {
      const input = inputs.get(portrait.name)!;
      const { ctx, result, faces } = await run(input);

      expect(faces).toHaveLength(1);
      const { box, crop, score } = faces[0];
      expect(score).toBeGreaterThanOrEqual(0.7);
      // Hand-measured face position: the detector must land on the face, not merely somewhere.
      expect(overlap(box, portrait.face)).toBeGreaterThan(0.5);
      expect(contains(crop, box)).toBe(true);

      const [output] = result.outputs;
      expect(output.contentType).toBe('image/jpeg');
      expect(Math.abs(output.height - Math.round((output.width * 4) / 3))).toBeLessThanOrEqual(1);
      expect({ width: output.width, height: output.height }).toEqual({ width: crop.width, height: crop.height });

      const bytes = ctx.blobs.get(output.key);
      const meta = await sharp(bytes).metadata();
      expect({ width: meta.width, height: meta.height }).toEqual({ width: output.width, height: output.height });
      // The reported crop is what was actually cut from the photo.
      const source = await sharp(input)
        .extract({ left: crop.x, top: crop.y, width: crop.width, height: crop.height })
        .png()
        .toBuffer();
      expect(await greyDifference(bytes, source, 64, 85)).toBeLessThan(4);
      // And the crop still shows a face when looked at on its own.
      const again = await detectFaces(sharp(bytes), output.width, output.height);
      expect(again.length).toBeGreaterThanOrEqual(1);
    },
  );

  it('keeps more room above the face box than below it (hair over neck)', async () => {
    const { faces } = await run(inputs.get('man-at-table')!, { aspect: '1:1', margin: 0.5 });
    const { box, crop } = faces[0];
    const above = box.y - crop.y;
    const below = crop.y + crop.height - (box.y + box.height);
    expect(above).toBeGreaterThan(below * 1.5);
  });

  it('passport 35:45 at 413x531 puts the face in the horizontal centre', async () => {
    const input = inputs.get('woman-head-shoulders')!;
    const { ctx, result, faces } = await run(input, { aspect: '35:45', size: { width: 413, height: 531 } });
    const [output] = result.outputs;
    expect({ width: output.width, height: output.height }).toEqual({ width: 413, height: 531 });
    const { box, crop } = faces[0];
    const faceCentre = (box.x + box.width / 2 - crop.x) / crop.width;
    expect(Math.abs(faceCentre - 0.5)).toBeLessThan(0.1);
    const again = await detectFaces(sharp(ctx.blobs.get(output.key)), 413, 531);
    expect(Math.abs((again[0].box.x + again[0].box.width / 2) / 413 - 0.5)).toBeLessThan(0.1);
  });

  it('size as a number sets the width and keeps the aspect', async () => {
    const { result } = await run(inputs.get('man-at-table')!, { size: 300, aspect: '2:3', format: 'png' });
    expect(result.outputs[0]).toMatchObject({ width: 300, height: 450, contentType: 'image/png' });
  });

  it('pads a cut-out past the image edge with transparency and keeps the aspect', async () => {
    const cutout = await sharp(inputs.get('woman-head-shoulders')!).ensureAlpha().png().toBuffer();
    const { ctx, result, faces } = await run(cutout, { margin: 3, aspect: '1:1' });
    const [output] = result.outputs;
    expect(output.contentType).toBe('image/png');
    expect(output.width).toBe(output.height);
    expect(contains(faces[0].crop, faces[0].box)).toBe(true);
    const { data, info } = await sharp(ctx.blobs.get(output.key)).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    // The woman's photo starts at its top edge, so a margin of three face boxes must reach above it.
    expect(faces[0].crop.y).toBeLessThan(0);
    expect(data[3]).toBe(0);
  });

  it('reports progress stages in order and honours an abort before work starts', async () => {
    const { ctx } = await run(inputs.get('man-at-table')!);
    expect(ctx.updates.map((u) => u.stage)).toEqual(['decode', 'detect', 'crop', 'done']);
    const percents = ctx.updates.map((u) => u.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);

    const aborted = testContext(inputs.get('man-at-table')!, options({}));
    aborted.controller.abort();
    expect((await rejection(processor.run(aborted))).code).toBe('cancelled');
  });

  it('stops at the next stage when aborted mid-job', async () => {
    const ctx = testContext(inputs.get('man-at-table')!, options({}));
    const progress = ctx.progress;
    ctx.progress = (update) => {
      progress(update);
      if (update.stage === 'detect') ctx.controller.abort();
    };
    expect((await rejection(processor.run(ctx))).code).toBe('cancelled');
    expect(ctx.blobs.stored.size).toBe(0);
  });
});

describe('face-crop with zero or several faces', () => {
  let trio: Buffer;
  beforeAll(async () => {
    trio = await sheetRegionJpeg(TRIO, 4);
  });

  it('fails with no_face_detected, not retryable, on an image of shapes', async () => {
    const err = await rejection(run(await shapesPng()));
    expect(err.code).toBe('no_face_detected');
    expect(err.retryable).toBe(false);
  });

  it('select single fails with multiple_faces on a group', async () => {
    const err = await rejection(run(trio, { select: 'single' }));
    expect(err.code).toBe('multiple_faces');
    expect(err.retryable).toBe(false);
    expect(err.details?.faces).toBeGreaterThanOrEqual(3);
  });

  it('select all returns one crop per person; largest returns the biggest face', async () => {
    const all = await run(trio, { select: 'all' });
    expect(all.result.outputs.length).toBeGreaterThanOrEqual(3);
    expect(all.faces).toHaveLength(all.result.outputs.length);
    for (const face of all.faces) expect(contains(face.crop, face.box)).toBe(true);
    const centres = all.faces.map((f) => f.box.x + f.box.width / 2);
    // Three different people, side by side: their face centres are well apart.
    const sorted = [...centres].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i] - sorted[i - 1]).toBeGreaterThan(40);

    const largest = await run(trio, { select: 'largest' });
    expect(largest.result.outputs).toHaveLength(1);
    const areas = all.faces.map((f) => f.box.width * f.box.height);
    expect(largest.faces[0].box.width * largest.faces[0].box.height).toBe(Math.max(...areas));
  });

  it('refuses a corrupt input as invalid_image', async () => {
    const jpeg = await portraitJpeg(PORTRAITS[0]);
    const err = await rejection(run(jpeg.subarray(0, jpeg.length / 3)));
    expect(err.code).toBe('invalid_image');
  });
});

describe('face-crop options', () => {
  it.each([
    [{ aspect: '3x4' }],
    [{ aspect: '0:4' }],
    [{ aspect: '1:20' }],
    [{ margin: -0.1 }],
    [{ select: 'first' }],
    [{ size: 8 }],
    [{ size: { width: 100 } }],
    [{ colour: 'red' }],
  ])('refuses %j', (raw) => {
    expect(() => options(raw)).toThrow(expect.objectContaining({ code: 'validation_failed' }));
  });

  it('applies the documented defaults', () => {
    expect(options({})).toEqual({ aspect: '3:4', margin: 0.5, select: 'largest' });
  });
});

describe('BlazeFace decoding and crop geometry', () => {
  it('has 896 anchors centred on their cells', () => {
    const heads = BLAZEFACE_BACK_GRIDS.map((g) => anchorCentres(g));
    expect(heads.map((h) => h.length)).toEqual([512, 384]);
    expect(heads[0][0]).toEqual({ x: 1 / 32, y: 1 / 32 });
    expect(heads[1][6]).toEqual({ x: 1.5 / 8, y: 0.5 / 8 });
  });

  it('decodes a box relative to its anchor and drops low scores', () => {
    const anchors = [
      { x: 0.5, y: 0.5 },
      { x: 0.25, y: 0.25 },
    ];
    const logits = Float32Array.from([3, -3]);
    const raw = new Float32Array(32);
    raw.set([12.8, -25.6, 64, 128], 0);
    const [face, ...rest] = decodeHead(anchors, logits, raw, 256, 0.5);
    expect(rest).toHaveLength(0);
    expect(face.x).toBeCloseTo(0.55 - 0.125);
    expect(face.y).toBeCloseTo(0.4 - 0.25);
    expect(face.width).toBeCloseTo(0.25);
    expect(face.height).toBeCloseTo(0.5);
    expect(face.score).toBeCloseTo(1 / (1 + Math.exp(-3)));
  });

  it('merges overlapping detections into one and keeps separate faces apart', () => {
    const d = (x: number, score: number) => ({ x, y: 0, width: 10, height: 10, score, keypoints: [] });
    const merged = mergeOverlapping([d(0, 0.9), d(1, 0.8), d(50, 0.7)]);
    expect(merged).toHaveLength(2);
    expect(merged[0].score).toBe(0.9);
    expect(merged[0].x).toBeCloseTo(0.8 / 1.7);
  });

  it('shrinks a crop that leaves the image without cutting the face, then pads the rest', () => {
    const face = { x: 40, y: 10, width: 40, height: 40 };
    const image = { width: 120, height: 100 };
    const ideal = idealCrop(face, 3 / 4, 0.5);
    expect(ideal.y).toBeLessThan(0);
    const fitted = toPixels(fitToImage(ideal, face, image), 3 / 4);
    expect(contains(fitted, face)).toBe(true);
    expect(Math.abs(fitted.width / fitted.height - 3 / 4)).toBeLessThan(0.02);
    const plan = planCut(fitted, image);
    expect(plan.extract.y).toBe(0);
    expect(plan.pad.top).toBe(-fitted.y);
  });
});
