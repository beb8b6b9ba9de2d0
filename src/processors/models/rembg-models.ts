import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { GROUP_READABLE } from '../../file-modes.js';
import { fileSize, modelUnavailable } from './model-files.js';

/**
 * The rembg family (U-2-Net, Silueta, IS-Net general use, BiRefNet): one `<name>.onnx` file each under the models
 * directory. A file an operator put there is used as is; a downloaded one must match the publisher's md5.
 */
export interface RembgSource {
  name: string;
  url: string;
  md5: string;
}

export interface RembgOptions {
  modelsDir: string;
  download: boolean;
  /** Overall limit for one download; the largest file is about 180 MB. */
  downloadTimeoutMs?: number;
}

// A failed download is not retried for this long, so a burst of jobs without network does not hammer the host.
const RETRY_AFTER_MS = 5 * 60_000;
const inFlight = new Map<string, Promise<string>>();
const failedAt = new Map<string, { at: number; error: Error }>();

export function rembgModelPath(modelsDir: string, name: string): string {
  return path.join(modelsDir, `${name}.onnx`);
}

export async function ensureRembgModel(source: RembgSource, opts: RembgOptions): Promise<string> {
  const file = rembgModelPath(opts.modelsDir, source.name);
  const size = await fileSize(file);
  if (size !== undefined && size > 0) return file;
  const howTo = `place the file at ${file} (from ${source.url}, md5 ${source.md5})`;
  const details = { model: source.name, path: file, url: source.url };
  if (!opts.download) {
    const message = `model ${source.name} is not installed and downloads are off (PIXQ_MODEL_DOWNLOAD): ${howTo}`;
    throw modelUnavailable(message, details);
  }
  const failed = failedAt.get(file);
  if (failed && Date.now() - failed.at < RETRY_AFTER_MS) {
    const message = `model ${source.name} could not be downloaded (${failed.error.message}); ${howTo}`;
    throw modelUnavailable(message, details, failed.error);
  }
  let pending = inFlight.get(file);
  if (!pending) {
    pending = download(source, file, opts.downloadTimeoutMs ?? 15 * 60_000).finally(() => inFlight.delete(file));
    inFlight.set(file, pending);
  }
  try {
    return await pending;
  } catch (err) {
    failedAt.set(file, { at: Date.now(), error: err as Error });
    const message = `model ${source.name} could not be downloaded (${(err as Error).message}); ${howTo}`;
    throw modelUnavailable(message, details, err);
  }
}

async function download(source: RembgSource, file: string, timeoutMs: number): Promise<string> {
  const response = await fetch(source.url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status} from ${source.url}`);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const md5 = createHash('md5');
  try {
    const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => md5.update(chunk));
    await pipeline(body, createWriteStream(temp, { mode: GROUP_READABLE }));
    const actual = md5.digest('hex');
    if (actual !== source.md5) throw new Error(`checksum mismatch: md5 ${actual}, expected ${source.md5}`);
    await rename(temp, file);
    return file;
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
