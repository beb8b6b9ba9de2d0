import { mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createWorker, type Worker } from 'tesseract.js';
import { validationFailed } from '../../errors.js';
import { raceAbort } from '../abort.js';
import { IdleCache } from './idle-cache.js';

/** A box in image pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface OcrLine {
  text: string;
  /** Tesseract's confidence, 0..100. */
  confidence: number;
  box: Box;
}

export interface OcrText {
  text: string;
  confidence: number;
  lines: OcrLine[];
}

const require = createRequire(import.meta.url);
// tesseract.js's "best_int" LSTM models: the accurate ones, integer-quantised for speed.
const MODEL_DIR = '4.0.0_best_int';

/**
 * The trained data of a language shipped by its npm package `@tesseract.js-data/<code>`; undefined when that
 * package is not installed. Nothing is ever downloaded at run time.
 */
function trainedDataFile(code: string): string | undefined {
  if (!/^[a-z]{3}(_[a-z]+)?$/.test(code)) return undefined;
  try {
    const dir = path.dirname(require.resolve(`@tesseract.js-data/${code}/package.json`));
    return path.join(dir, MODEL_DIR, `${code}.traineddata.gz`);
  } catch {
    return undefined;
  }
}

/** Throws `validation_failed` naming every requested OCR language whose data package is not installed. */
export function checkLanguages(languages: string[]): void {
  const missing = languages.filter((code) => trainedDataFile(code) === undefined);
  if (missing.length === 0) return;
  throw validationFailed(
    `options.languages: OCR language ${missing.map((c) => `"${c}"`).join(', ')} is not installed; ` +
      `install @tesseract.js-data/<code> (installed here: eng and any other such package)`,
    { errors: missing.map((code) => ({ path: 'options.languages', message: `language ${code} is not installed` })) },
  );
}

/**
 * OCR with tesseract.js workers, one per language combination, kept loaded between jobs and terminated after
 * `idleMs` unused. Language data comes from the installed packages, never from the network.
 */
export class OcrEngine {
  private readonly workers: IdleCache<Worker>;

  constructor(idleMs: number) {
    this.workers = new IdleCache(idleMs, (worker) => worker.terminate().then(() => undefined));
  }

  /** Reads `image` (PNG or JPEG bytes); the job stops waiting when `signal` aborts (tesseract finishes alone). */
  async read(image: Buffer, languages: string[], signal: AbortSignal): Promise<OcrText & { cold: boolean }> {
    const key = [...languages].sort().join('+');
    const { value, cold } = await this.workers.use(
      key,
      () => openWorker(languages),
      (worker) => raceAbort(worker.recognize(image, {}, { text: true, blocks: true }), signal),
    );
    const lines = (value.data.blocks ?? []).flatMap((block) =>
      block.paragraphs.flatMap((paragraph) =>
        paragraph.lines.map((line) => ({
          text: line.text.trim(),
          confidence: Math.round(line.confidence * 10) / 10,
          box: {
            x: line.bbox.x0,
            y: line.bbox.y0,
            width: line.bbox.x1 - line.bbox.x0,
            height: line.bbox.y1 - line.bbox.y0,
          },
        })),
      ),
    );
    return {
      text: value.data.text.trim(),
      confidence: value.data.confidence,
      lines: lines.filter((l) => l.text !== ''),
      cold,
    };
  }

  get loaded(): string[] {
    return this.workers.loaded;
  }

  close(): Promise<void> {
    return this.workers.closeAll();
  }
}

/**
 * tesseract.js reads every language from one `langPath`; each language's package has its own folder, so a
 * private folder of links to the installed files stands in for it. cacheMethod none: nothing is written.
 */
async function openWorker(languages: string[]): Promise<Worker> {
  const langPath = await mkdtemp(path.join(os.tmpdir(), 'pixq-ocr-'));
  try {
    for (const code of languages)
      await symlink(trainedDataFile(code) as string, path.join(langPath, `${code}.traineddata.gz`));
    // OEM 1 is the LSTM engine the best_int data is for.
    return await createWorker(languages, 1, { langPath, cacheMethod: 'none', gzip: true });
  } finally {
    await rm(langPath, { recursive: true, force: true });
  }
}
