/**
 * int8 vs fp32 ISNet: `npm run bench:int8` (or `npx tsx bench/quantized-model.ts`).
 *
 * Builds isnet-int8 in PIXQ_MODELS_DIR (OS temp dir when unset) if it is not cached, then runs remove-background
 * with both models in one process, alternating which goes first on each image so that the machine's load hits
 * both alike: the synthetic product scenes of the tests (known masks) at about 1 MP, the three test portraits and
 * five real face close-ups (test/support/portraits.ts), both upscaled 4x.
 * Reports inference wall time and CPU time per image of the process tree (this process and its model processes,
 * all threads; steadier than wall time on a shared machine), and mask IoU (alpha >= 128) of int8 against fp32 and against the synthetic truth.
 */
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { locateModel } from '../src/processors/models/locate.js';
import { MODELS, type ModelName } from '../src/processors/models/catalog.js';
import { parseOptions } from '../src/processors/options.js';
import { createRemoveBackground } from '../src/processors/remove-background.js';
import { CLOSE_UPS, closeUpJpeg, PORTRAITS, portraitJpeg } from '../test/support/portraits.js';
import { iou, SCENE_COUNT, syntheticScene } from '../test/support/synthetic.js';
import { describeMachine } from './machine.js';
import { treeCpuMs } from './queue/rss.js';

const MODEL_PAIR = ['isnet-medium', 'isnet-int8'] as const satisfies readonly ModelName[];

interface Sample {
  name: string;
  kind: 'synthetic' | 'portrait' | 'close-up';
  image: Buffer;
  truth?: Uint8Array;
}

interface Run {
  inferenceMs: number;
  cpuMs: number;
  mask: Uint8Array;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const load = () =>
  os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

async function samples(): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < SCENE_COUNT; i++) {
    const scene = await syntheticScene(i, 1155, 866);
    out.push({ name: scene.name, kind: 'synthetic', image: scene.image, truth: scene.mask });
  }
  for (const portrait of PORTRAITS)
    out.push({ name: portrait.name, kind: 'portrait', image: await portraitJpeg(portrait) });
  for (const [i, region] of CLOSE_UPS.entries())
    out.push({ name: `close-up-${i + 1}`, kind: 'close-up', image: await closeUpJpeg(region) });
  return out;
}

async function main(): Promise<void> {
  const modelsDir = process.env.PIXQ_MODELS_DIR ?? path.join(os.tmpdir(), 'pixq-bench-models');
  const config = loadConfig({ ...process.env, PIXQ_MODELS_DIR: modelsDir, PIXQ_LOG_LEVEL: 'silent' });
  const log = pino({ level: 'info' }, pino.destination(2));
  console.log(`${describeMachine()}, threads ${config.onnxThreads}, load before build ${load()}`);
  let started = performance.now();
  await locateModel(MODELS['isnet-int8'], config, log);
  console.log(`int8 model ready in ${Math.round(performance.now() - started)} ms (load ${load()})`);

  const processor = createRemoveBackground(config);
  const inputs = await samples();
  const runs: Record<string, Run[]> = { 'isnet-medium': [], 'isnet-int8': [] };
  const runOne = async (model: ModelName, image: Buffer): Promise<Run> => {
    let output: Buffer | undefined;
    const cpu = treeCpuMs(process.pid);
    const result = await processor.run({
      input: image,
      options: parseOptions(processor, { model, onlyMask: true }),
      log: pino({ level: 'silent' }),
      signal: new AbortController().signal,
      progress: () => undefined,
      blobs: { put: async (data) => ((output = data), { key: 'bench', bytes: data.length }) },
    });
    const used = treeCpuMs(process.pid) - cpu;
    const mask = new Uint8Array(await sharp(output!).extractChannel(0).raw().toBuffer());
    return { inferenceMs: (result.result as { inferenceMs: number }).inferenceMs, cpuMs: used, mask };
  };
  // Warm-up: loads both sessions (cold runs are left out of the figures).
  for (const model of MODEL_PAIR) await runOne(model, inputs[0].image);
  console.log(`load before the series ${load()}`);
  started = performance.now();
  for (const [i, sample] of inputs.entries()) {
    const order = i % 2 === 0 ? MODEL_PAIR : [...MODEL_PAIR].reverse();
    for (const model of order) runs[model].push(await runOne(model, sample.image));
    const [a, b] = [runs['isnet-medium'][i], runs['isnet-int8'][i]];
    console.log(
      `${sample.name}: fp32 ${a.inferenceMs} ms (CPU ${Math.round(a.cpuMs)}), int8 ${b.inferenceMs} ms (CPU ${Math.round(b.cpuMs)}), ` +
        `IoU ${iou(b.mask, a.mask).toFixed(4)}, load ${load()}`,
    );
  }
  console.log(
    `series of ${inputs.length} images x 2 models in ${Math.round((performance.now() - started) / 1000)} s, load after ${load()}`,
  );
  await processor.close();

  const [fp32, int8] = [runs['isnet-medium'], runs['isnet-int8']];
  const rows = ['| figure | isnet-medium (fp32) | isnet-int8 |', '|---|---|---|'];
  rows.push(
    `| inference ms, median | ${median(fp32.map((r) => r.inferenceMs))} | ${median(int8.map((r) => r.inferenceMs))} |`,
  );
  rows.push(
    `| CPU ms per image (job), median | ${Math.round(median(fp32.map((r) => r.cpuMs)))} | ${Math.round(median(int8.map((r) => r.cpuMs)))} |`,
  );
  const ratio = (pick: (r: Run) => number) => (median(fp32.map(pick)) / median(int8.map(pick))).toFixed(2);
  rows.push(`| speed-up (fp32 / int8), wall / CPU | | ${ratio((r) => r.inferenceMs)}x / ${ratio((r) => r.cpuMs)}x |`);
  const sets: [string, Sample['kind'][]][] = [
    ['synthetic', ['synthetic']],
    ['portrait', ['portrait']],
    ['close-up', ['close-up']],
    ['real photos (portraits and close-ups)', ['portrait', 'close-up']],
  ];
  for (const [label, kinds] of sets) {
    const picked = inputs.flatMap((s, i) => (kinds.includes(s.kind) ? [i] : []));
    const vsFp32 = picked.map((i) => iou(int8[i].mask, fp32[i].mask));
    rows.push(
      `| IoU int8 vs fp32, ${label} (${picked.length}), mean / min | | ${mean(vsFp32).toFixed(4)} / ${Math.min(...vsFp32).toFixed(4)} |`,
    );
  }
  const synthetic = inputs.flatMap((s, i) => (s.truth ? [{ i, truth: s.truth }] : []));
  const vsTruth = (side: Run[]) => mean(synthetic.map(({ i, truth }) => iou(side[i].mask, truth))).toFixed(4);
  rows.push(`| IoU vs synthetic truth, mean | ${vsTruth(fp32)} | ${vsTruth(int8)} |`);
  console.log(rows.join('\n'));
}

await main();
