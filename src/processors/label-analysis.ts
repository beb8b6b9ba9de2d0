import { Type, type Static, type TLiteral, type TUnion } from '@sinclair/typebox';
import type { Config } from '../config.js';
import { validationFailed } from '../errors.js';
import { openImage } from './image.js';
import { AnthropicReviewer } from './labels/anthropic.js';
import { BarcodeReader } from './labels/barcodes.js';
import { findFields } from './labels/fields.js';
import { CATEGORIES, MARKETPLACES, type Category } from './labels/marketplace-rules.js';
import { checkLanguages, OcrEngine } from './labels/ocr.js';
import { evaluate } from './labels/rules.js';
import type { Processor, ProcessorContext, ProcessorResult } from './types.js';

const CategoryOption = Type.Union(
  CATEGORIES.map((c) => Type.Literal(c)),
  { default: 'other', description: 'Product category; picks the marketplace rules that apply.' },
) as unknown as TUnion<TLiteral<Category>[]>;

export const LabelAnalysisOptions = Type.Object(
  {
    category: CategoryOption,
    marketplaces: Type.Array(Type.String({ minLength: 1, maxLength: 40 }), {
      default: [],
      maxItems: 10,
      uniqueItems: true,
      description: `Check against these marketplaces' rules: ${Object.keys(MARKETPLACES).join(', ')}.`,
    }),
    productName: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    languages: Type.Array(Type.String({ minLength: 3, maxLength: 20 }), {
      default: ['eng'],
      minItems: 1,
      maxItems: 4,
      uniqueItems: true,
      description: 'OCR languages (tesseract codes); each needs its @tesseract.js-data package installed.',
    }),
    provider: Type.Union([Type.Literal('none'), Type.Literal('anthropic')], {
      default: 'none',
      description: 'none: offline OCR, barcodes and rules only; anthropic: also a review by Claude.',
    }),
  },
  { additionalProperties: false },
);
export type LabelAnalysisOptions = Static<typeof LabelAnalysisOptions>;

export interface LabelAnalysisProcessor extends Processor<typeof LabelAnalysisOptions> {
  close(): Promise<void>;
  /** What is loaded now: OCR language sets and whether the ZXing module is (released after PIXQ_MODEL_IDLE_MS). */
  readonly loaded: { ocr: string[]; barcodes: boolean };
}

// OCR works best with capital letters about 20-40 px high; a phone photo is downscaled to this long side.
const OCR_MAX_EDGE = 2500;

export function createLabelAnalysis(config: Config): LabelAnalysisProcessor {
  const ocr = new OcrEngine(config.modelIdleMs);
  const barcodes = new BarcodeReader(config.modelIdleMs);
  const reviewer = new AnthropicReviewer(config.anthropic);
  return {
    type: 'label-analysis',
    optionsSchema: LabelAnalysisOptions,
    needsInput: true,
    // One tesseract worker reads one image at a time; a second slot would only queue behind it.
    concurrency: 1,
    // Anthropic's first usage tier allows 50 requests a minute; an operator with more raises it per type.
    rateLimit: { limit: 50, windowMs: 60_000 },
    validate: (options) => validate(options, reviewer),
    run: (ctx) => analyse(ctx, config, { ocr, barcodes, reviewer }),
    close: async () => {
      await Promise.all([ocr.close(), barcodes.close()]);
    },
    get loaded() {
      return { ocr: ocr.loaded, barcodes: barcodes.loaded };
    },
  };
}

function validate(options: LabelAnalysisOptions, reviewer: AnthropicReviewer): void {
  const unknown = options.marketplaces.filter((m) => !(m in MARKETPLACES));
  if (unknown.length > 0) {
    throw validationFailed(
      `options.marketplaces: unknown marketplace ${unknown.join(', ')}; known: ${Object.keys(MARKETPLACES).join(', ')}`,
      {
        errors: unknown.map(() => ({ path: 'options.marketplaces', message: 'unknown marketplace' })),
      },
    );
  }
  checkLanguages(options.languages);
  if (options.provider === 'anthropic' && !reviewer.configured) {
    throw validationFailed(
      'options.provider: anthropic is not configured on this server (ANTHROPIC_API_KEY is not set)',
      {
        errors: [{ path: 'options.provider', message: 'provider not configured' }],
      },
    );
  }
}

interface Engines {
  ocr: OcrEngine;
  barcodes: BarcodeReader;
  reviewer: AnthropicReviewer;
}

type Context = ProcessorContext<LabelAnalysisOptions>;

async function analyse(ctx: Context, config: Config, engines: Engines): Promise<ProcessorResult> {
  const { options, signal } = ctx;
  const opened = await openImage(ctx.input, config.maxPixels);

  enter(ctx, 'ocr', 0, 'reading the text');
  const scale = Math.min(1, OCR_MAX_EDGE / Math.max(opened.width, opened.height));
  const ocrImage = await opened.image
    .clone()
    .resize(Math.round(opened.width * scale), Math.round(opened.height * scale))
    .flatten({ background: '#ffffff' })
    .greyscale()
    .png({ compressionLevel: 1 })
    .toBuffer();
  const text = await engines.ocr.read(ocrImage, options.languages, signal);
  const lines = text.lines.map((l) => ({ ...l, box: unscale(l.box, scale) }));

  enter(ctx, 'barcodes', 45, 'reading the barcodes');
  const barcodes = await engines.barcodes.read(opened.image, signal);

  enter(ctx, 'rules', 60, `checking ${options.marketplaces.join(', ') || 'general'} rules`);
  const fields = findFields(lines);
  const findings = evaluate({
    fields,
    barcodes,
    category: options.category,
    marketplaces: options.marketplaces,
    today: new Date().toISOString().slice(0, 10),
  });

  const result: Record<string, unknown> = {
    text: { full: text.text, confidence: text.confidence, lines },
    barcodes,
    fields,
    findings,
    ocrCold: text.cold,
  };
  if (options.provider === 'anthropic') {
    enter(ctx, 'analyzing', 70, 'asking Claude to review the label');
    result.provider = await engines.reviewer.review(
      {
        image: opened.image,
        ocrText: text.text,
        category: options.category,
        marketplaces: options.marketplaces,
        productName: options.productName,
      },
      signal,
    );
  }
  signal.throwIfAborted();
  return { outputs: [], result };
}

function unscale(box: { x: number; y: number; width: number; height: number }, scale: number) {
  const f = (v: number) => Math.round(v / scale);
  return { x: f(box.x), y: f(box.y), width: f(box.width), height: f(box.height) };
}

/** Checks for abort before starting a stage, then reports it. */
function enter(ctx: Context, stage: string, percent: number, message: string): void {
  ctx.signal.throwIfAborted();
  ctx.progress({ percent, stage, message });
}
