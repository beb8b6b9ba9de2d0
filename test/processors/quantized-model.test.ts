import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODELS } from '../../src/processors/models/catalog.js';
import { ensureImglyModel } from '../../src/processors/models/imgly-models.js';
import { ensureInt8Model, int8ModelFile, type Int8Build } from '../../src/processors/models/int8-models.js';
import { graphOf, readGraph } from '../../src/processors/models/onnx-graph.js';
import { OnnxHost } from '../../src/processors/models/onnx-worker.js';
import { modelInput } from '../../src/processors/models/resample.js';
import { toInputTensor, toMask } from '../../src/processors/models/tensors.js';
import { iou, syntheticScene } from '../support/synthetic.js';

// Two calibration images keep the build short (the production set has 14); it is built once, by the first test.
const BUILD_MS = 20 * 60_000;
const build: Int8Build = { host: { provider: 'cpu', threads: 2 }, calibrationImages: 2 };
const spec = MODELS['isnet-int8'];

let modelsDir: string;
let fp32File: string;
let file: string;

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pixq-int8-'));
  fp32File = await ensureImglyModel(modelsDir, '/models/medium', true);
  file = int8ModelFile(modelsDir, '/models/medium');
});

afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe('the int8 ISNet', () => {
  it(
    'rebuilds a cached model whose checksum does not match, once for concurrent uses, then reuses it',
    async () => {
      // A file left by an interrupted or tampered build: the manifest's checksum is not this file's.
      await writeFile(file, 'not a model');
      await writeFile(`${file}.json`, JSON.stringify({ key: 'stale', sha256: '0'.repeat(64) }));
      const messages: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void messages.push(JSON.parse(line).msg) });
      const concurrent = await Promise.all([1, 2].map(() => ensureInt8Model(modelsDir, '/models/medium', spec, { ...build, log })));
      expect(concurrent).toEqual([file, file]);
      expect(messages.filter((m) => m.startsWith('building the int8 model'))).toHaveLength(1);

      const { nodes } = readGraph(graphOf(await readFile(file)));
      expect(nodes.filter((n) => n.op === 'QuantizeLinear').length).toBeGreaterThan(50);
      const before = (await stat(file)).mtimeMs;
      expect(await ensureInt8Model(modelsDir, '/models/medium', spec, { ...build, log })).toBe(file);
      expect((await stat(file)).mtimeMs).toBe(before);
      expect(messages.filter((m) => m.startsWith('building the int8 model'))).toHaveLength(1);
    },
    BUILD_MS,
  );

  it(
    'segments the synthetic products like the fp32 model does',
    async () => {
      await ensureInt8Model(modelsDir, '/models/medium', spec, build);
      const hosts = await Promise.all([fp32File, file].map((f) => OnnxHost.open(f, build.host)));
      try {
        const ious: number[] = [];
        for (const index of [0, 6]) {
          const scene = await syntheticScene(index);
          const rgb = await modelInput(sharp(scene.image), scene.width, scene.height, spec.size);
          const masks: Uint8Array[] = [];
          for (const host of hosts) {
            const output = await host.run({ [host.inputNames[0]]: toInputTensor(rgb, spec) }, host.outputNames[0]);
            masks.push(toMask(output, spec));
          }
          ious.push(iou(masks[1], masks[0]));
        }
        // A broken rewrite gives noise or nothing (IoU near 0). The bound for a default model, 0.98, is not met:
        // bench/quantized-model.ts measured a mean of 0.86 with the full calibration set (docs/processors.md).
        expect(Math.min(...ious)).toBeGreaterThan(0.5);
      } finally {
        await Promise.all(hosts.map((h) => h.close()));
      }
    },
    BUILD_MS,
  );
});
