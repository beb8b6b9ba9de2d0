import sharp from 'sharp';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createFaceCrop } from '../../src/processors/face-crop.js';
import { detectFaces } from '../../src/processors/faces/detector.js';
import { parseOptions } from '../../src/processors/options.js';
import { createPipeline, type PipelineOptions } from '../../src/processors/pipeline.js';
import { createRemoveBackground } from '../../src/processors/remove-background.js';
import { createTransform } from '../../src/processors/transform.js';
import type { Processor } from '../../src/processors/types.js';
import { PORTRAITS, portraitJpeg, shapesPng, testContext } from '../support/portraits.js';
import { rejection } from '../support/errors.js';
import { TEST_MODELS_DIR } from '../support/models.js';

const config = loadConfig({});

function registry(extra: Processor[] = []) {
  const processors = new Map<string, Processor>();
  for (const p of [createTransform(config), createFaceCrop(config), ...extra]) processors.set(p.type, p as Processor);
  const pipeline = createPipeline((type) => processors.get(type), config);
  processors.set(pipeline.type, pipeline as unknown as Processor);
  return pipeline;
}

const pipeline = registry();

function options(raw: unknown): PipelineOptions {
  return parseOptions(pipeline, raw);
}

describe('pipeline validation at submit time', () => {
  it.each([
    [{ steps: [] }, 'options.steps'],
    [{ steps: Array.from({ length: 9 }, () => ({ type: 'transform', options: { format: 'png' } })) }, 'options.steps'],
    [
      { steps: [{ type: 'transform' }, { type: 'pipeline', options: { steps: [{ type: 'transform' }] } }] },
      'options.steps[1].type',
    ],
    [{ steps: [{ type: 'transform' }, { type: 'sharpen' }] }, 'options.steps[1].type: unknown job type "sharpen"'],
    [
      { steps: [{ type: 'face-crop' }, { type: 'transform', options: { background: 'nope' } }] },
      'options.steps[1] (transform)',
    ],
    [{ steps: [{ type: 'face-crop', options: { aspect: 'wide' } }] }, 'options.steps[0] (face-crop)'],
    [
      { steps: [{ type: 'transform', options: { resize: { width: 10, fit: 'squash' } } }] },
      'options.steps[0] (transform)',
    ],
  ])('refuses %j naming %s', (raw, where) => {
    let err: unknown;
    try {
      options(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'validation_failed' });
    expect((err as Error).message).toContain(where);
  });

  it('accepts eight valid steps', () => {
    const steps = Array.from({ length: 8 }, () => ({ type: 'transform', options: { resize: { width: 100 } } }));
    expect(options({ steps }).steps).toHaveLength(8);
  });
});

describe('pipeline runs', () => {
  let portrait: Buffer;
  beforeAll(async () => {
    portrait = await portraitJpeg(PORTRAITS[1]);
  });

  it('feeds each step the previous output and stores only the last', async () => {
    const ctx = testContext(
      portrait,
      options({
        steps: [
          { type: 'transform', options: { resize: { width: 420 }, format: 'png' } },
          { type: 'face-crop', options: { aspect: '1:1' } },
          { type: 'transform', options: { resize: { width: 128, height: 128, fit: 'cover' }, format: 'webp' } },
        ],
      }),
    );
    const result = await pipeline.run(ctx);

    expect(result.outputs).toHaveLength(1);
    expect(result.outputs[0]).toMatchObject({ width: 128, height: 128, contentType: 'image/webp' });
    expect(ctx.blobs.stored.size).toBe(1);
    const steps = result.result?.steps as { type: string; result: Record<string, unknown> }[];
    expect(steps.map((s) => s.type)).toEqual(['transform', 'face-crop', 'transform']);
    // face-crop saw the 420 px wide image from step 0, so its face box lies inside 420 px.
    const face = (steps[1].result.faces as { box: { x: number; width: number } }[])[0].box;
    expect(face.x + face.width).toBeLessThanOrEqual(420);
    expect(steps[0].result).toMatchObject({ width: 420, format: 'png' });
    const stored = ctx.blobs.get(result.outputs[0].key);
    expect((await sharp(stored).metadata()).format).toBe('webp');
  });

  it('spreads progress over the steps with step-qualified stage names', async () => {
    const ctx = testContext(
      portrait,
      options({ steps: [{ type: 'face-crop' }, { type: 'transform', options: { resize: { width: 64 } } }] }),
    );
    await pipeline.run(ctx);
    const stages = ctx.updates.map((u) => u.stage);
    expect(stages[0]).toBe('0:face-crop/decode');
    expect(stages).toContain('0:face-crop/detect');
    expect(stages).toContain('1:transform/transform');
    expect(stages.at(-1)).toBe('1:transform/done');
    const percents = ctx.updates.map((u) => u.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    expect(percents.at(-1)).toBe(100);
    const lastOfFirst = ctx.updates.filter((u) => u.stage?.startsWith('0:')).at(-1);
    expect(lastOfFirst?.percent).toBe(50);
  });

  it('fails with the step error code, naming the step, and stores nothing', async () => {
    const ctx = testContext(
      await shapesPng(),
      options({ steps: [{ type: 'transform', options: { resize: { width: 300 } } }, { type: 'face-crop' }] }),
    );
    const err = await rejection(pipeline.run(ctx));
    expect(err.code).toBe('no_face_detected');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('step 1 (face-crop)');
    expect(err.details).toMatchObject({ step: 1, stepType: 'face-crop' });
    expect(ctx.blobs.stored.size).toBe(0);
  });

  it('stops between steps when aborted', async () => {
    const ctx = testContext(
      portrait,
      options({ steps: [{ type: 'transform', options: { resize: { width: 200 } } }, { type: 'face-crop' }] }),
    );
    const progress = ctx.progress;
    ctx.progress = (update) => {
      progress(update);
      if (update.stage === '0:transform/done') ctx.controller.abort();
    };
    const err = await rejection(pipeline.run(ctx));
    expect(err.code).toBe('cancelled');
    expect(ctx.updates.some((u) => u.stage?.startsWith('1:'))).toBe(false);
  });
});

describe('ID photo pipeline', () => {
  // The pipeline as users write it, without a fit: a resize naming width and height gives exactly that
  // size. face-crop's 35:45 crop is a whole number of pixels, so its ratio is never exactly 35:45, and a
  // box-fitting default rounded one side down (412x531).
  it.each(PORTRAITS.map((p) => [p.name, p] as const))(
    'face-crop 35:45 then transform {resize: 413x531} gives exactly 413x531 (%s)',
    async (_name, portrait) => {
      const ctx = testContext(
        await portraitJpeg(portrait),
        options({
          steps: [
            { type: 'face-crop', options: { aspect: '35:45' } },
            { type: 'transform', options: { background: '#ffffff', resize: { width: 413, height: 531 } } },
          ],
        }),
      );
      const result = await pipeline.run(ctx);
      const meta = await sharp(ctx.blobs.get(result.outputs[0].key)).metadata();
      expect([result.outputs[0].width, result.outputs[0].height]).toEqual([413, 531]);
      expect([meta.width, meta.height]).toEqual([413, 531]);
    },
    60_000,
  );

  it('remove-background, face-crop 35:45, transform onto white gives a 413x531 photo with the face centred', async () => {
    // The shared test models, never the working tree's data/.
    const removeBackground = createRemoveBackground(loadConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR }));
    onTestFinished(() => removeBackground.close());
    const idPipeline = registry([removeBackground as unknown as Processor]);
    const ctx = testContext(
      await portraitJpeg(PORTRAITS[0]),
      parseOptions(idPipeline, {
        steps: [
          { type: 'remove-background' },
          { type: 'face-crop', options: { aspect: '35:45' } },
          { type: 'transform', options: { background: '#ffffff', resize: { width: 413, height: 531, fit: 'cover' } } },
        ],
      }),
    );
    const result = await idPipeline.run(ctx);

    expect(result.outputs).toHaveLength(1);
    const bytes = ctx.blobs.get(result.outputs[0].key);
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([413, 531, 3]);
    const at = (x: number, y: number) => [...data.subarray((y * 413 + x) * 3, (y * 413 + x) * 3 + 3)];
    for (const [x, y] of [
      [2, 2],
      [410, 2],
    ]) {
      expect(Math.min(...at(x, y))).toBeGreaterThan(240);
    }
    const [face] = await detectFaces(sharp(bytes), 413, 531);
    expect(face).toBeDefined();
    expect(Math.abs((face.box.x + face.box.width / 2) / 413 - 0.5)).toBeLessThan(0.1);
  }, 120_000);
});
