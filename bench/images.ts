/**
 * `npm run bench:images`: speed and memory of each image processor on 1-megapixel photos, as one markdown table.
 *
 * Each processor runs in its own child process so that its peak RSS is its own (models stay loaded for the
 * life of a process). Per processor: one cold run (model load included), a sequential series for the median
 * latency, then a series at the worker's default concurrency for that job type for the throughput.
 * The remove-background section follows the table (bench/images-remove-background.ts: end to end through the API,
 * a row per ISNet model, imgly's own removeBackground()); `--models` and `--parts` choose what it runs.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import sharp from 'sharp';
import { loadConfig, type Config } from '../src/config.js';
import { createFaceCrop } from '../src/processors/face-crop.js';
import { createLabelAnalysis } from '../src/processors/label-analysis.js';
import { packageDir } from '../src/processors/faces/model.js';
import { parseOptions } from '../src/processors/options.js';
import { MemoryBlobWriter, createPipeline } from '../src/processors/pipeline.js';
import { createTransform } from '../src/processors/transform.js';
import { createRemoveBackground } from '../src/processors/remove-background.js';
import type { Processor } from '../src/processors/types.js';
import { cleanLabel, defectiveLabel } from '../test/support/labels.js';
import { benchRemoveBackground, benchSelection } from './images-remove-background.js';
import { watchTreePeak } from './queue/rss.js';

interface Case {
  name: string;
  type: string;
  options: unknown;
  /** Sequential runs for the median; the concurrent series runs as many again. */
  runs: number;
  /** The images to run on; 1-MP portraits unless the case says otherwise. */
  inputs?: () => Promise<Buffer[]>;
  target?: { label: string; met: (r: Measured) => boolean };
}

interface Measured {
  name: string;
  coldMs: number;
  medianMs: number;
  p90Ms: number;
  concurrency: number;
  perMinute: number;
  peakRssMb: number;
}

const ID_PHOTO_STEPS = [
  { type: 'remove-background' },
  { type: 'face-crop', options: { aspect: '35:45' } },
  { type: 'transform', options: { background: '#ffffff', resize: { width: 413, height: 531, fit: 'cover' } } },
];

const CASES: Case[] = [
  {
    name: 'transform thumbnail (256 px jpeg)',
    type: 'transform',
    options: { resize: { width: 256, height: 256, fit: 'inside' }, format: 'jpeg', quality: 80 },
    runs: 150,
    target: { label: '>= 50 images/s', met: (r) => r.perMinute >= 50 * 60 },
  },
  {
    name: 'face-crop (3:4, largest)',
    type: 'face-crop',
    options: {},
    runs: 40,
    target: { label: '<= 150 ms per image', met: (r) => r.medianMs <= 150 },
  },
  { name: 'remove-background (default model)', type: 'remove-background', options: {}, runs: 5 },
  {
    name: 'pipeline ID photo (rb + face-crop + transform)',
    type: 'pipeline',
    options: { steps: ID_PHOTO_STEPS },
    runs: 4,
  },
  {
    name: 'label-analysis offline (OCR + barcodes + rules, ~1000x1400 label)',
    type: 'label-analysis',
    options: { category: 'food', marketplaces: ['amazon', 'walmart'] },
    runs: 10,
    inputs: async () => [(await cleanLabel()).png, (await defectiveLabel()).png],
  },
];

const MEGAPIXEL = 1_000_000;

/** The sample sheet's single-person photos, each scaled to about one megapixel like a phone upload. */
async function megapixelPortraits(): Promise<Buffer[]> {
  const sheet = path.join(packageDir('@vladmandic/human'), 'assets', 'samples.jpg');
  const regions = [
    { left: 166, top: 0, width: 151, height: 157 },
    { left: 326, top: 0, width: 210, height: 157 },
    { left: 641, top: 0, width: 147, height: 157 },
  ];
  return Promise.all(
    regions.map((r) => {
      const scale = Math.sqrt(MEGAPIXEL / (r.width * r.height));
      return sharp(sheet)
        .extract(r)
        .resize(Math.round(r.width * scale), Math.round(r.height * scale))
        .jpeg({ quality: 90 })
        .toBuffer();
    }),
  );
}

function processorFor(type: string, config: Config): Processor {
  const registry = new Map<string, Processor>();
  const add = (p: Processor) => registry.set(p.type, p);
  add(createTransform(config) as unknown as Processor);
  add(createFaceCrop(config) as unknown as Processor);
  if (type === 'remove-background' || type === 'pipeline') add(createRemoveBackground(config) as unknown as Processor);
  if (type === 'label-analysis') add(createLabelAnalysis(config) as unknown as Processor);
  add(createPipeline((t) => registry.get(t), config) as unknown as Processor);
  const processor = registry.get(type);
  if (!processor) throw new Error(`no processor ${type}`);
  return processor;
}

async function runOnce(processor: Processor, options: unknown, input: Buffer): Promise<number> {
  const start = performance.now();
  await processor.run({
    input,
    options,
    signal: new AbortController().signal,
    progress: () => {},
    blobs: new MemoryBlobWriter(),
    log: pino({ level: 'silent' }),
  });
  return performance.now() - start;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p + 0.5))];
}

async function measure(c: Case): Promise<Measured> {
  // The same model cache as the remove-background bench, so the model files are assembled once.
  const modelsDir = process.env.PIXQ_MODELS_DIR ?? path.join(os.tmpdir(), 'pixq-bench-models');
  const config = loadConfig({ ...process.env, PIXQ_MODELS_DIR: modelsDir, PIXQ_LOG_LEVEL: 'silent' });
  const processor = processorFor(c.type, config);
  const options = parseOptions(processor, c.options);
  const inputs = await (c.inputs ?? megapixelPortraits)();
  const coldMs = await runOnce(processor, options, inputs[0]);
  const times: number[] = [];
  for (let i = 0; i < c.runs; i++) times.push(await runOnce(processor, options, inputs[i % inputs.length]));
  const concurrency = config.workerConcurrency[c.type] ?? processor.concurrency ?? 1;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < c.runs) await runOnce(processor, options, inputs[next++ % inputs.length]);
    }),
  );
  const wallMs = performance.now() - started;
  await (processor as { close?: () => Promise<void> }).close?.();
  return {
    name: c.name,
    coldMs,
    medianMs: percentile(times, 0.5),
    p90Ms: percentile(times, 0.9),
    concurrency,
    perMinute: (c.runs / wallMs) * 60_000,
    // The parent measures the process tree's peak.
    peakRssMb: 0,
  };
}

/** Runs one case in a fresh process (same tsx loader) and reads its JSON line. */
function measureInChild(index: number): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--case', String(index)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    // Models run in processes of their own: the peak is the whole tree's.
    const peak = watchTreePeak(child.pid!);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const peakRssMb = peak.stop();
      const line = out.trim().split('\n').at(-1);
      if (code !== 0 || !line) reject(new Error(`case ${CASES[index].name} exited with ${code}`));
      else resolve({ ...(JSON.parse(line) as Measured), peakRssMb });
    });
  });
}

function table(results: Measured[]): string {
  const rows = results.map((r) => {
    const c = CASES.find((k) => k.name === r.name);
    const target = c?.target ? `${c.target.label}: ${c.target.met(r) ? 'met' : 'MISSED'}` : '';
    return `| ${r.name} | ${r.medianMs.toFixed(0)} | ${r.p90Ms.toFixed(0)} | ${r.coldMs.toFixed(0)} | ${r.perMinute.toFixed(0)} (x${r.concurrency}) | ${r.peakRssMb.toFixed(0)} | ${target} |`;
  });
  return [
    '| processor (1 MP input) | median ms/image | p90 ms | first run ms (incl. model load) | images/min (concurrency) | peak RSS MB | target |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const caseArg = process.argv.indexOf('--case');
  if (caseArg >= 0) {
    const result = await measure(CASES[Number(process.argv[caseArg + 1])]);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }
  // `--only <text>`: just the cases whose name contains it (and no imgly comparison), for one new row.
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  const results: Measured[] = [];
  for (let i = 0; i < CASES.length; i++) {
    if (only !== undefined && !CASES[i].name.includes(only)) continue;
    process.stderr.write(`measuring ${CASES[i].name}...\n`);
    results.push(await measureInChild(i));
  }
  console.log(table(results));
  if (only !== undefined) return;
  const rb = await benchRemoveBackground(benchSelection(process.argv));
  console.log(`\n### remove-background\n\n${rb.markdown}`);
}

await main();
