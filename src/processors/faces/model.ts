import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

const require = createRequire(import.meta.url);

/** Square input side of the BlazeFace "back camera" model that Human ships. */
export const INPUT_SIZE = 256;

/** Where Human keeps the weights; they ship inside the npm package, so nothing is downloaded. */
export function blazefaceModelPath(): string {
  return path.join(packageDir('@vladmandic/human'), 'models', 'blazeface.json');
}

/** A package's folder, found from its entry point: Human's `exports` map hides `package.json` itself. */
export function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (dir !== path.dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name)
        return dir;
    } catch {
      // no package.json at this level: keep walking up
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the folder of package ${name}`);
}

interface ModelJson {
  modelTopology: object;
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/**
 * Reads model.json and its weight files from disk and hands them to tfjs directly: tfjs's own loader would
 * fetch them as URLs, and Node's fetch refuses file:// URLs.
 */
export function fileModelHandler(jsonPath: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await readFile(jsonPath, 'utf8')) as ModelJson;
      const dir = path.dirname(jsonPath);
      const files = json.weightsManifest.flatMap((group) => group.paths);
      const chunks = await Promise.all(files.map((file) => readFile(path.join(dir, file))));
      const weights = Buffer.concat(chunks);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      };
    },
  };
}

let backendReady: Promise<void> | undefined;

/** Starts the WebAssembly backend once per process; later callers share the same promise. */
export function ensureWasmBackend(): Promise<void> {
  backendReady ??= startWasmBackend().catch((err: unknown) => {
    backendReady = undefined;
    throw err;
  });
  return backendReady;
}

async function startWasmBackend(): Promise<void> {
  const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  setWasmPaths(`${distDir}${path.sep}`);
  // The Emscripten runtime adds process-wide handlers that rethrow every uncaught error and unhandled
  // rejection; they would replace the service's own handling, so they are taken off again.
  const before = {
    uncaughtException: process.listeners('uncaughtException'),
    unhandledRejection: process.listeners('unhandledRejection'),
  };
  const ok = await tf.setBackend('wasm');
  await tf.ready();
  removeAddedListeners('uncaughtException', before.uncaughtException);
  removeAddedListeners('unhandledRejection', before.unhandledRejection);
  if (!ok || tf.getBackend() !== 'wasm') throw new Error('the TensorFlow.js WebAssembly backend did not start');
  tf.enableProdMode();
}

function removeAddedListeners(event: 'uncaughtException' | 'unhandledRejection', before: readonly unknown[]): void {
  const emitter: NodeJS.EventEmitter = process;
  for (const listener of emitter.listeners(event)) {
    if (!before.includes(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
  }
}

let model: Promise<GraphModel> | undefined;

/** The BlazeFace graph, loaded on first use and kept for the life of the process (about 0.6 MB). */
export function loadBlazeface(): Promise<GraphModel> {
  model ??= (async () => {
    await ensureWasmBackend();
    return loadGraphModel(fileModelHandler(blazefaceModelPath()));
  })().catch((err: unknown) => {
    model = undefined;
    throw err;
  });
  return model;
}
