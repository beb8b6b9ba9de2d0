/**
 * Background-removal benchmark: pixq's remove-background against @imgly/background-removal-node's own
 * `removeBackground()` on the same 1-megapixel images, plus the fp16-vs-fp32 weights question.
 *
 * Run alone with `npx tsx bench/images-remove-background.ts`, or call `benchRemoveBackground()` from the full
 * image bench. Each contender runs in its own child process (same tsx loader) so that each peak RSS is its own.
 * Inputs: synthetic product shots at 1155 x 866 (known masks) and portraits from the human package's sample
 * sheet scaled to about 1 MP. Models are cached in PIXQ_MODELS_DIR, or in the OS temp dir when that is unset.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino from 'pino';
import sharp from 'sharp';
import { loadConfig } from '../src/config.js';
import { ensureImglyModel } from '../src/processors/models/imgly-models.js';
import { OnnxHost } from '../src/processors/models/onnx-worker.js';
import { parseOptions } from '../src/processors/options.js';
import { createRemoveBackground } from '../src/processors/remove-background.js';
import { alphaOf, iou, syntheticScene } from '../test/support/synthetic.js';

const SYNTHETIC = 7;
const PORTRAITS = [
  { left: 166, width: 151 },
  { left: 326, width: 211 },
  { left: 641, width: 148 },
];
const SHEET_ROW_HEIGHT = 158;
const AB_RUNS = 6;

interface SideResult {
  coldMs: number;
  timesMs: number[];
  /** Process CPU time per image, all threads: steadier than wall time when other work shares the cores. */
  cpuMs: number[];
  peakRssMb: number;
}

interface AbResult {
  fp16Ms: number[];
  fp32Ms: number[];
  /** CPU time of the process (both inference threads) per run: less sensitive to other load than wall time. */
  fp16CpuMs: number[];
  fp32CpuMs: number[];
}

export interface RemoveBackgroundBench {
  images: number;
  pixq: SideResult;
  imgly: SideResult | { error: string };
  /** imgly's median time over pixq's: above 1 means pixq is faster. */
  speedRatio?: number;
  /** The same for CPU time. */
  cpuRatio?: number;
  /** Per-image IoU (alpha >= 0.5) between the two masks. */
  iouVsImgly?: { mean: number; min: number };
  /** Mean IoU against the true masks of the synthetic images. */
  iouVsTruth: { pixq: number; imgly?: number };
  ab: AbResult;
  markdown: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

function modelsDir(): string {
  return process.env.PIXQ_MODELS_DIR ?? path.join(os.tmpdir(), 'pixq-bench-models');
}

/** Writes the inputs (and the synthetic truth masks) to `dir`; returns how many images there are. */
async function writeInputs(dir: string): Promise<number> {
  let index = 0;
  for (let i = 0; i < SYNTHETIC; i++) {
    const scene = await syntheticScene(i, 1155, 866);
    await writeFile(path.join(dir, `${index}.jpg`), scene.image);
    await writeFile(path.join(dir, `${index}.truth`), scene.mask);
    index++;
  }
  const sheet = fileURLToPath(new URL('../node_modules/@vladmandic/human/assets/samples.jpg', import.meta.url));
  for (const p of PORTRAITS) {
    const scale = Math.sqrt(1_000_000 / (p.width * SHEET_ROW_HEIGHT));
    const image = await sharp(sheet)
      .extract({ left: p.left, top: 0, width: p.width, height: SHEET_ROW_HEIGHT })
      .resize(Math.round(p.width * scale), Math.round(SHEET_ROW_HEIGHT * scale), { kernel: 'lanczos3' })
      .jpeg({ quality: 90 })
      .toBuffer();
    await writeFile(path.join(dir, `${index}.jpg`), image);
    index++;
  }
  return index;
}

async function inputs(dir: string): Promise<Buffer[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.jpg')).sort((a, b) => parseInt(a) - parseInt(b));
  return Promise.all(names.map((n) => readFile(path.join(dir, n))));
}

/** Times `removeOne` over every image after one cold call, saving each output's alpha as `<side>-<i>.alpha`. */
async function timeSide(dir: string, side: string, removeOne: (input: Buffer) => Promise<Buffer>): Promise<SideResult> {
  const images = await inputs(dir);
  let started = performance.now();
  await removeOne(images[0]);
  const coldMs = performance.now() - started;
  const timesMs: number[] = [];
  const cpuMs: number[] = [];
  for (const [i, image] of images.entries()) {
    started = performance.now();
    const cpu = process.cpuUsage();
    const output = await removeOne(image);
    const used = process.cpuUsage(cpu);
    timesMs.push(performance.now() - started);
    cpuMs.push((used.user + used.system) / 1000);
    await writeFile(path.join(dir, `${side}-${i}.alpha`), await alphaOf(output));
  }
  return { coldMs, timesMs, cpuMs, peakRssMb: peakRssMb() };
}

async function runPixq(dir: string): Promise<SideResult> {
  const config = loadConfig({ ...process.env, PIXQ_MODELS_DIR: modelsDir(), PIXQ_LOG_LEVEL: 'silent' });
  const processor = createRemoveBackground(config);
  const options = parseOptions(processor, {});
  const log = pino({ level: 'silent' });
  const result = await timeSide(dir, 'pixq', async (input) => {
    let output: Buffer | undefined;
    await processor.run({
      input,
      options,
      log,
      signal: new AbortController().signal,
      progress: () => undefined,
      blobs: { put: async (data) => ((output = data), { key: 'bench', bytes: data.length }) },
    });
    return output!;
  });
  await processor.close();
  return result;
}

async function runImgly(dir: string): Promise<SideResult> {
  const { removeBackground } = await import('@imgly/background-removal-node');
  const require = createRequire(import.meta.url);
  // Its default publicPath is relative to the working directory; point it at the package's own files.
  const publicPath = pathToFileURL(path.dirname(require.resolve('@imgly/background-removal-node')) + path.sep).href;
  return timeSide(dir, 'imgly', async (input) => {
    const blob = await removeBackground(new Blob([input], { type: 'image/jpeg' }), { publicPath, model: 'medium' });
    return Buffer.from(await blob.arrayBuffer());
  });
}

/** Inference alone, alternating the two files on one input so that machine load hits both alike. */
async function runAb(): Promise<AbResult> {
  const dir = modelsDir();
  const opts = { provider: 'cpu', threads: loadConfig({}).onnxThreads };
  const hosts = {
    fp16: await OnnxHost.open(await ensureImglyModel(dir, '/models/medium', false), opts),
    fp32: await OnnxHost.open(await ensureImglyModel(dir, '/models/medium', true), opts),
  };
  const times: AbResult = { fp16Ms: [], fp32Ms: [], fp16CpuMs: [], fp32CpuMs: [] };
  const input = () => ({ data: new Float32Array(3 * 1024 * 1024).fill(0.1), dims: [1, 3, 1024, 1024] });
  for (let i = 0; i < AB_RUNS * 2 + 2; i++) {
    // Alternate which goes first in each pair, so neither always follows the other.
    const which = Math.floor(i / 2) % 2 === i % 2 ? 'fp16' : 'fp32';
    const host = hosts[which];
    const started = performance.now();
    const cpu = process.cpuUsage();
    await host.run({ [host.inputNames[0]]: input() }, host.outputNames[0]);
    const used = process.cpuUsage(cpu);
    // The first run of each warms up its session and is left out.
    if (i < 2) continue;
    times[`${which}Ms`].push(performance.now() - started);
    times[`${which}CpuMs`].push((used.user + used.system) / 1000);
  }
  await Promise.all(Object.values(hosts).map((h) => h.close()));
  return times;
}

function runChild<T>(mode: string, dir: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--rb-child', mode, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1);
      if (code === 0 && line) return resolve(JSON.parse(line) as T);
      reject(new Error(`${mode} exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

async function compare(dir: string, images: number, imglyRan: boolean) {
  const vsImgly: number[] = [];
  const truth: { pixq: number[]; imgly: number[] } = { pixq: [], imgly: [] };
  for (let i = 0; i < images; i++) {
    const pixq = await readFile(path.join(dir, `pixq-${i}.alpha`));
    const imgly = imglyRan ? await readFile(path.join(dir, `imgly-${i}.alpha`)) : undefined;
    if (imgly) vsImgly.push(iou(pixq, imgly));
    if (i >= SYNTHETIC) continue;
    const mask = await readFile(path.join(dir, `${i}.truth`));
    truth.pixq.push(iou(pixq, mask));
    if (imgly) truth.imgly.push(iou(imgly, mask));
  }
  return { vsImgly, truth };
}

const ms = (v: number) => v.toFixed(0);
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');

function markdown(r: Omit<RemoveBackgroundBench, 'markdown'>): string {
  const row = (name: string, s: SideResult, truthIou?: number) =>
    `| ${name} | ${ms(median(s.timesMs))} | ${ms(median(s.cpuMs))} | ${ms(s.coldMs)} | ${(60_000 / mean(s.timesMs)).toFixed(1)} | ${s.peakRssMb.toFixed(0)} | ${truthIou?.toFixed(4) ?? 'n/a'} |`;
  const pixqMedian = median(r.pixq.timesMs);
  const lines = [
    `remove-background on ${r.images} images of about 1 MP (${SYNTHETIC} synthetic products, ${PORTRAITS.length} portraits), one at a time, ${os.availableParallelism()} cores`,
    '',
    '| pipeline | median ms/image | median CPU ms/image | first run ms (incl. model load) | images/min | peak RSS MB | IoU vs truth (synthetic) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('pixq remove-background (isnet-medium, fp32 weights, refineEdges)', r.pixq, r.iouVsTruth.pixq),
  ];
  if ('error' in r.imgly) lines.push(`| @imgly/background-removal-node removeBackground() | failed: ${r.imgly.error} | | | | | |`);
  else lines.push(row('@imgly/background-removal-node removeBackground() (medium)', r.imgly, r.iouVsTruth.imgly));
  lines.push('', '| check | value | target |', '| --- | ---: | --- |');
  lines.push(`| pixq median per image | ${ms(pixqMedian)} ms | <= 3000 ms: ${mark(pixqMedian <= 3000)} |`);
  if (r.speedRatio !== undefined) lines.push(`| speed vs imgly (imgly median / pixq median) | ${r.speedRatio.toFixed(2)}x | >= 1: ${mark(r.speedRatio >= 1)} |`);
  if (r.cpuRatio !== undefined) lines.push(`| CPU time vs imgly (imgly median / pixq median) | ${r.cpuRatio.toFixed(2)}x | |`);
  if (r.iouVsImgly) {
    lines.push(`| mask IoU pixq vs imgly, mean (min) | ${r.iouVsImgly.mean.toFixed(4)} (${r.iouVsImgly.min.toFixed(4)}) | >= 0.98: ${mark(r.iouVsImgly.mean >= 0.98)} |`);
  }
  lines.push(`| pixq peak RSS | ${r.pixq.peakRssMb.toFixed(0)} MB | < 1536 MB: ${mark(r.pixq.peakRssMb < 1536)} |`);
  lines.push(
    `| inference only, fp16 file vs widened fp32, median of ${AB_RUNS}: wall | ${ms(median(r.ab.fp16Ms))} ms vs ${ms(median(r.ab.fp32Ms))} ms | |`,
    `| same, CPU time (all threads) | ${ms(median(r.ab.fp16CpuMs))} ms vs ${ms(median(r.ab.fp32CpuMs))} ms | |`,
  );
  return lines.join('\n');
}

export async function benchRemoveBackground(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<RemoveBackgroundBench> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pixq-rb-bench-'));
  try {
    const images = await writeInputs(dir);
    log('remove-background: pixq...');
    const pixq = await runChild<SideResult>('pixq', dir);
    log('remove-background: imgly removeBackground()...');
    const imgly = await runChild<SideResult>('imgly', dir).catch((err: Error) => ({ error: err.message }));
    log('remove-background: fp16 vs fp32 inference...');
    const ab = await runChild<AbResult>('ab', dir);
    const imglyRan = !('error' in imgly);
    const { vsImgly, truth } = await compare(dir, images, imglyRan);
    const result: Omit<RemoveBackgroundBench, 'markdown'> = {
      images,
      pixq,
      imgly,
      speedRatio: imglyRan ? median(imgly.timesMs) / median(pixq.timesMs) : undefined,
      cpuRatio: imglyRan ? median(imgly.cpuMs) / median(pixq.cpuMs) : undefined,
      iouVsImgly: vsImgly.length ? { mean: mean(vsImgly), min: Math.min(...vsImgly) } : undefined,
      iouVsTruth: { pixq: mean(truth.pixq), imgly: truth.imgly.length ? mean(truth.imgly) : undefined },
      ab,
    };
    return { ...result, markdown: markdown(result) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function child(mode: string, dir: string): Promise<void> {
  const result = mode === 'pixq' ? await runPixq(dir) : mode === 'imgly' ? await runImgly(dir) : await runAb();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const childArg = process.argv.indexOf('--rb-child');
if (childArg >= 0) {
  await child(process.argv[childArg + 1], process.argv[childArg + 2]);
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchRemoveBackground();
  console.log(result.markdown);
}
