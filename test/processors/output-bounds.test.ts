import os from 'node:os';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createFaceCrop } from '../../src/processors/face-crop.js';
import { parseOptions } from '../../src/processors/options.js';
import { MAX_OUTPUT_SIDE } from '../../src/processors/output-size.js';
import { createPipeline } from '../../src/processors/pipeline.js';
import { createRemoveBackground } from '../../src/processors/remove-background.js';
import { createTransform, outputSize } from '../../src/processors/transform.js';
import type { Processor } from '../../src/processors/types.js';
import { expectProblem, imageForm, useApi, waitForJob } from '../support/api.js';
import { rejection } from '../support/errors.js';
import { PORTRAITS, portraitJpeg, testContext } from '../support/portraits.js';
import { describeEachStore } from '../support/stores.js';
import { TEST_MODELS_DIR } from '../support/models.js';

/**
 * Every processor bounds its output by PIXQ_MAX_PIXELS and MAX_OUTPUT_SIDE before the pixel work, computing
 * the size from its options and the input's header. The input is the outside check's: a 1 x 60000 PNG of a
 * couple of KB that `transform {resize: {width: 300}}` once turned into 300 x 18,000,000 pixels.
 */
async function stripPng(): Promise<Buffer> {
  const rows = Buffer.alloc(60_000 * 3);
  for (let y = 0; y < 60_000; y++) rows.fill(Math.floor(y / 240) % 256, y * 3, y * 3 + 3);
  return sharp(rows, { raw: { width: 1, height: 60_000, channels: 3 } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

const config = loadConfig({ PIXQ_DATA_DIR: os.tmpdir(), PIXQ_MODELS_DIR: TEST_MODELS_DIR });

function run<P extends Processor>(processor: P, input: Buffer, raw: unknown) {
  const ctx = testContext(input, parseOptions(processor, raw));
  return { ctx, done: processor.run(ctx) };
}

let strip: Buffer;
beforeAll(async () => {
  strip = await stripPng();
});

describe('output bounds', () => {
  it('the test input is the 1x60000 PNG of about 2 KB', async () => {
    const meta = await sharp(strip).metadata();
    expect([meta.width, meta.height, meta.format]).toEqual([1, 60_000, 'png']);
    expect(strip.length).toBeLessThan(4096);
  });

  it('transform {resize: {width: 300}} of the strip fails output_too_large, permanently, before any resize', async () => {
    const { ctx, done } = run(createTransform(config), strip, { resize: { width: 300 } });
    const err = await rejection(done);
    expect(err.code).toBe('output_too_large');
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({
      width: 300,
      height: 18_000_000,
      maxPixels: config.maxPixels,
      maxSide: MAX_OUTPUT_SIDE,
    });
    expect(err.message).toContain('300x18000000');
    expect(ctx.blobs.stored.size).toBe(0);
  });

  it('transform refuses a side over the limit even within the pixel budget, and keeps what fits', async () => {
    // The strip as it is: 60,000 pixels, but one side of 60,000 px (WebP cannot hold it).
    const tall = await rejection(run(createTransform(config), strip, { format: 'webp' }).done);
    expect(tall.code).toBe('output_too_large');
    expect(tall.details).toMatchObject({ width: 1, height: 60_000 });
    // Resized by height instead, it fits and comes out at the computed size.
    const { ctx, done } = run(createTransform(config), strip, { resize: { height: 6000 } });
    const [output] = (await done).outputs;
    expect([output.width, output.height]).toEqual([1, 6000]);
    expect(ctx.blobs.stored.size).toBe(1);
  });

  it('transform counts the rotation: a 45 degree turn of a wide image grows past the side limit', async () => {
    const wide = await sharp({ create: { width: 12_000, height: 200, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const err = await rejection(run(createTransform(config), wide, { rotate: 45, background: '#ffffff' }).done);
    expect(err.code).toBe('output_too_large');
    expect(err.details?.width).toBeGreaterThan(MAX_OUTPUT_SIDE / 2);
  });

  it('the computed transform size is the size sharp writes', async () => {
    const input = await sharp({ create: { width: 640, height: 427, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const processor = createTransform(config);
    const cases: unknown[] = [];
    for (const fit of ['cover', 'contain', 'fill', 'inside', 'outside']) {
      for (const box of [
        { width: 300 },
        { height: 100 },
        { width: 1000 },
        { width: 300, height: 300 },
        { width: 1000, height: 90 },
      ]) {
        for (const withoutEnlargement of [false, true]) cases.push({ resize: { ...box, fit, withoutEnlargement } });
      }
    }
    cases.push(
      { rotate: 90 },
      { rotate: 30, background: '#fff' },
      { rotate: -45, background: '#fff', resize: { width: 200 } },
    );
    for (const raw of cases) {
      const options = parseOptions(processor, raw);
      const { outputs } = await processor.run(testContext(input, options));
      const computed = outputSize({ width: 640, height: 427 }, options);
      // Arbitrary angles may differ from libvips by its rounding of the rotated box.
      expect(Math.abs(computed.width - outputs[0].width), JSON.stringify(raw)).toBeLessThanOrEqual(1);
      expect(Math.abs(computed.height - outputs[0].height), JSON.stringify(raw)).toBeLessThanOrEqual(1);
    }
  });

  it('face-crop with an explicit size over PIXQ_MAX_PIXELS fails output_too_large before detecting faces', async () => {
    const { ctx, done } = run(createFaceCrop(config), await portraitJpeg(PORTRAITS[0]), {
      size: { width: 8000, height: 8000 },
    });
    const err = await rejection(done);
    expect(err.code).toBe('output_too_large');
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ width: 8000, height: 8000 });
    expect(ctx.updates.map((u) => u.stage)).not.toContain('detect');
  });

  it('face-crop bounds the size a crop would have by the pixel limit, before it is cut', async () => {
    const small = loadConfig({ PIXQ_DATA_DIR: os.tmpdir(), PIXQ_MAX_PIXELS: '400000' });
    // 600x800 (480,000 pixels) when the crop's own size would fit the limit: the size option decides.
    const { ctx, done } = run(createFaceCrop(small), await portraitJpeg(PORTRAITS[0]), { size: 600 });
    expect((await rejection(done)).code).toBe('output_too_large');
    expect(ctx.blobs.stored.size).toBe(0);
  });

  it('remove-background of the strip fails output_too_large before inference', async () => {
    const processor = createRemoveBackground(config);
    try {
      const { ctx, done } = run(processor, strip, {});
      const err = await rejection(done);
      expect(err.code).toBe('output_too_large');
      expect(err.details).toMatchObject({ width: 1, height: 60_000 });
      expect(ctx.updates.map((u) => u.stage)).not.toContain('inference');
    } finally {
      await processor.close?.();
    }
  });

  it('a pipeline step that would exceed the bound fails the pipeline with output_too_large, naming the step', async () => {
    const processors = new Map<string, Processor>();
    for (const p of [createTransform(config), createFaceCrop(config)]) processors.set(p.type, p as Processor);
    const pipeline = createPipeline((type) => processors.get(type), config);
    const { ctx, done } = run(pipeline, strip, {
      steps: [
        { type: 'transform', options: { resize: { height: 6000 } } },
        { type: 'transform', options: { resize: { width: 300 } } },
      ],
    });
    const err = await rejection(done);
    expect(err.code).toBe('output_too_large');
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({ step: 1, stepType: 'transform', width: 300, height: 1_800_000 });
    expect(ctx.updates.some((u) => u.stage === '0:transform/done')).toBe(true);
  });
});

describeEachStore('output bounds through the API', (target) => {
  const api = useApi(target);

  it('the strip uploaded with transform {resize: {width: 300}} ends failed output_too_large after one attempt', async () => {
    const { key } = await api().vendor();
    const form = imageForm([{ bytes: strip, name: 'strip.png', type: 'image/png' }], {
      type: 'transform',
      options: JSON.stringify({ resize: { width: 300 } }),
      maxAttempts: '3',
    });
    const res = await api().call('POST', '/v1/jobs', { key, form });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    await api().startWorker();
    const job = await waitForJob(api(), key, res.body.id, ['failed', 'succeeded'], 60_000);
    expect(job).toMatchObject({ state: 'failed', attempts: 1, error: { code: 'output_too_large' } });
    expectProblem(await api().call('GET', `/v1/jobs/${res.body.id}/output`, { key }), 404, 'not_found');
  });
});
