import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openEngine } from '../../src/engine/index.js';
import { PixqError } from '../../src/errors.js';
import {
  createLabelAnalysis,
  type LabelAnalysisOptions,
  type LabelAnalysisProcessor,
} from '../../src/processors/label-analysis.js';
import { parseOptions } from '../../src/processors/options.js';
import { createPipeline } from '../../src/processors/pipeline.js';
import { claim, DEFAULT_OPTIONS } from '../support/engine.js';
import { rejection } from '../support/errors.js';
import { characterErrorRate, CLEAN_LINES, cleanLabel, defectiveLabel } from '../support/labels.js';
import { apiError, messagesApi, toolUse, type MessagesApi } from '../support/messages-api.js';
import { testContext } from '../support/portraits.js';
import { waitUntil } from '../support/processes.js';
import { tempDir } from '../support/stores.js';

const ALL_MARKETPLACES = ['amazon', 'walmart', 'ebay', 'etsy', 'otto'];
const REVIEW = {
  productName: 'Organic Oat Biscuits',
  summary: 'Complete food label.',
  compliant: true,
  fields: { netQuantity: '250 g', allergens: ['milk', 'oats'] },
  findings: [{ severity: 'info', issue: 'Allergens could be in bold.', marketplace: 'amazon' }],
};

let api: MessagesApi;
let processor: LabelAnalysisProcessor;

beforeAll(async () => {
  api = await messagesApi();
  processor = createLabelAnalysis(
    loadConfig({
      PIXQ_DATA_DIR: tempDir(),
      ANTHROPIC_API_KEY: 'sk-test',
      ANTHROPIC_BASE_URL: api.url,
      PIXQ_LLM_MODEL: 'claude-test-1',
    }),
  );
});

afterAll(async () => {
  await processor.close();
  await api.close();
});

async function analyse(proc: LabelAnalysisProcessor, input: Buffer, raw: Record<string, unknown>) {
  const ctx = testContext(input, parseOptions(proc, raw) as LabelAnalysisOptions);
  const { result } = await proc.run(ctx);
  return { result: result as any, stages: ctx.updates.map((u) => u.stage) };
}

describe('label-analysis offline', () => {
  it('reads the text of a clean label, decodes every barcode and finds no defect against any marketplace', async () => {
    const { png, codes } = await cleanLabel();
    const { result, stages } = await analyse(processor, png, { category: 'food', marketplaces: ALL_MARKETPLACES });

    const read = result.text.lines.map((l: { text: string }) => l.text);
    for (const line of CLEAN_LINES) expect(read.join('\n')).toContain(line.split(/\s+/).slice(0, 2).join(' '));
    // Lines tesseract finds in the bars themselves come with low confidence; the label's text is the rest.
    const textLines = result.text.lines
      .filter((l: any) => l.confidence >= 50)
      .map((l: any) => l.text)
      .join('\n');
    const cer = characterErrorRate(CLEAN_LINES.join('\n').replace(/ {2,}/g, ' '), textLines);
    console.log(`label-analysis OCR character error rate on the clean label: ${(cer * 100).toFixed(2)}%`);
    expect(cer).toBeLessThan(0.03);
    for (const line of result.text.lines) {
      expect(line.confidence).toBeGreaterThanOrEqual(0);
      expect(line.box.width).toBeGreaterThan(0);
    }

    const decoded = Object.fromEntries(result.barcodes.map((b: any) => [b.format, b.value]));
    expect(decoded).toEqual(codes);
    const { width, height } = await sharp(png).metadata();
    for (const b of result.barcodes) {
      expect(b.valid).toBe(true);
      expect(b.box.x).toBeGreaterThanOrEqual(0);
      expect(b.box.x + b.box.width).toBeLessThanOrEqual(width!);
      expect(b.box.y + b.box.height).toBeLessThanOrEqual(height!);
    }

    expect(result.fields).toMatchObject({
      netQuantity: { value: 250, unit: 'g' },
      bestBefore: { kind: 'best-before', date: '2030-12-31' },
      lot: { value: 'L2345A' },
      allergens: { named: expect.arrayContaining(['milk', 'oats']) },
    });
    expect(result.fields.ingredients.text).toContain('oat flour');
    expect(result.fields.manufacturer.text).toContain('Leeds');
    expect(result.fields.marks.map((m: { mark: string }) => m.mark).sort()).toEqual(['CE', 'recycling']);
    expect(result.findings).toEqual([]);
    expect(stages).toEqual(['ocr', 'barcodes', 'rules']);
  });

  it('keeps the OCR worker and the ZXing module loaded between jobs', async () => {
    const { png } = await defectiveLabel();
    await analyse(processor, png, {});
    const { result } = await analyse(processor, png, {});
    expect(result.ocrCold).toBe(false);
    expect(processor.loaded).toEqual({ ocr: ['eng'], barcodes: true });
  });

  it('finds the planted defects and no others: missing net quantity, a past date, a wrong check digit', async () => {
    const { png, wrongEan } = await defectiveLabel();
    const { result } = await analyse(processor, png, { category: 'food', marketplaces: ['amazon', 'walmart'] });
    expect(result.barcodes).toEqual([expect.objectContaining({ format: 'EAN-13', value: wrongEan, valid: false })]);
    const findings = [...result.findings].sort((a: any, b: any) => a.code.localeCompare(b.code));
    expect(findings).toEqual([
      expect.objectContaining({ code: 'barcode_check_digit', severity: 'error', barcode: wrongEan }),
      expect.objectContaining({ code: 'date_passed', severity: 'error', field: 'bestBefore' }),
      expect.objectContaining({ code: 'missing_net_quantity', severity: 'error', marketplaces: ['amazon', 'walmart'] }),
    ]);
  });

  it('refuses a language that is not installed and an unknown marketplace, naming them', () => {
    const language = (() => {
      try {
        parseOptions(processor, { languages: ['eng', 'xyz'] });
      } catch (err) {
        return err as PixqError;
      }
    })();
    expect(language).toMatchObject({ code: 'validation_failed' });
    expect(language?.message).toMatch(/"xyz" is not installed/);
    expect(() => parseOptions(processor, { marketplaces: ['amazon', 'mars'] })).toThrow(/unknown marketplace mars/);
    expect(() => parseOptions(processor, { category: 'weapons' })).toThrow(/options\.category/);
    // A pipeline step would escape the type's global rate limit.
    const pipeline = createPipeline(
      (type) => (type === 'label-analysis' ? processor : undefined),
      loadConfig({ PIXQ_DATA_DIR: tempDir() }),
    );
    expect(() => parseOptions(pipeline, { steps: [{ type: 'label-analysis' }] })).toThrow(/runs only as its own job/);
  });

  it('releases the OCR worker and ZXing module when idle, loads them again for the next job, and stops on abort', async () => {
    const idle = createLabelAnalysis(loadConfig({ PIXQ_DATA_DIR: tempDir(), PIXQ_MODEL_IDLE_MS: '1000' }));
    try {
      const { png } = await defectiveLabel();
      const first = await analyse(idle, png, {});
      expect(first.result.ocrCold).toBe(true);
      await waitUntil(() => idle.loaded.ocr.length === 0 && !idle.loaded.barcodes, 30_000, 'idle release');
      const again = await analyse(idle, png, {});
      expect(again.result.ocrCold).toBe(true);

      const ctx = testContext(png, parseOptions(idle, {}) as LabelAnalysisOptions);
      const running = idle.run(ctx);
      await waitUntil(() => ctx.updates.some((u) => u.stage === 'ocr'), 30_000, 'the ocr stage');
      ctx.controller.abort();
      expect(await rejection(running)).toMatchObject({ code: 'cancelled' });
    } finally {
      await idle.close();
    }
  });
});

describe('label-analysis with the anthropic provider (a Messages API on loopback)', () => {
  it('sends the resized image, the OCR text and a forced tool, and keeps the checked answer with model and usage', async () => {
    api.script(toolUse('record_label_review', REVIEW));
    const { png } = await cleanLabel(2400);
    const before = api.requests.length;
    const { result, stages } = await analyse(processor, png, {
      category: 'food',
      marketplaces: ['amazon'],
      provider: 'anthropic',
      productName: 'Oat biscuits',
    });
    expect(stages).toEqual(['ocr', 'barcodes', 'rules', 'analyzing']);
    expect(result.provider).toEqual({
      provider: 'anthropic',
      model: 'claude-test-1',
      usage: { inputTokens: 1234, outputTokens: 56 },
      review: REVIEW,
    });

    expect(api.requests.length).toBe(before + 1);
    const { body, headers } = api.requests[before];
    // The key goes as x-api-key or, in this SDK version, as a bearer token.
    expect([headers['x-api-key'], headers.authorization]).toContain(
      headers['x-api-key'] ? 'sk-test' : 'Bearer sk-test',
    );
    expect(body.model).toBe('claude-test-1');
    expect(body.tool_choice).toEqual({ type: 'tool', name: 'record_label_review' });
    expect(body.tools).toEqual([
      expect.objectContaining({
        name: 'record_label_review',
        input_schema: expect.objectContaining({ type: 'object' }),
      }),
    ]);
    expect(body.tools[0].input_schema.required).toEqual(
      expect.arrayContaining(['summary', 'compliant', 'fields', 'findings']),
    );
    const [image, text] = body.messages[0].content;
    expect(image).toMatchObject({ type: 'image', source: { type: 'base64', media_type: 'image/jpeg' } });
    const sent = await sharp(Buffer.from(image.source.data, 'base64')).metadata();
    expect(sent.format).toBe('jpeg');
    expect(Math.max(sent.width!, sent.height!)).toBe(1568);
    expect(text.type).toBe('text');
    expect(text.text).toContain('Net weight 250 g');
    expect(text.text).toContain('Oat biscuits');
  });

  it('a 429 is retryable and the job goes back no sooner than retry-after; 529 and 5xx are retryable', async () => {
    const { png } = await defectiveLabel();
    const run = () => rejection(analyse(processor, png, { provider: 'anthropic' }));
    api.script({ status: 429, headers: { 'retry-after': '7' }, body: apiError('rate_limit_error', 'slow down') });
    const limited = await run();
    expect(limited).toMatchObject({ code: 'provider_rate_limited', retryable: true, retryAfterMs: 7000 });

    const now = Date.now();
    const engine = await openEngine(
      { dataDir: tempDir() },
      { ...DEFAULT_OPTIONS, backoffBaseMs: 10, backoffMaxMs: 10, now: () => now },
    );
    try {
      const vendor = await engine.vendors.create('v');
      await engine.jobs.enqueue(vendor.id, [
        { type: 'label-analysis', options: {}, inputUrl: 'https://example.com/a.png' },
      ]);
      const [job] = (await claim(engine, 'w', { 'label-analysis': 1 })).jobs;
      await engine.work.fail('w', job, limited);
      const after = await engine.jobs.get(job.id);
      expect(after).toMatchObject({ state: 'delayed', error: { code: 'provider_rate_limited', retryable: true } });
      expect(after.runAt - now).toBeGreaterThanOrEqual(7000);
    } finally {
      await engine.close();
    }

    api.script({ status: 529, body: apiError('overloaded_error', 'Overloaded') });
    expect(await run()).toMatchObject({ code: 'provider_unavailable', retryable: true });
    api.script({ status: 500, body: apiError('api_error', 'boom') });
    expect(await run()).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });

  it('a 400 and an answer that does not match the schema are permanent', async () => {
    const { png } = await defectiveLabel();
    const run = () => rejection(analyse(processor, png, { provider: 'anthropic' }));
    api.script({ status: 400, body: apiError('invalid_request_error', 'image too large') });
    expect(await run()).toMatchObject({ code: 'provider_rejected', retryable: false });
    api.script(toolUse('record_label_review', { ...REVIEW, compliant: 'yes' }));
    const invalid = await run();
    expect(invalid).toMatchObject({ code: 'provider_invalid_answer', retryable: false });
    expect(invalid.message).toMatch(/compliant/);
    api.script(toolUse('some_other_tool', REVIEW));
    expect(await run()).toMatchObject({ code: 'provider_invalid_answer', retryable: false });
  });

  it('refuses provider anthropic at validation when no API key is configured', () => {
    const bare = createLabelAnalysis(loadConfig({ PIXQ_DATA_DIR: tempDir() }));
    expect(() => parseOptions(bare, { provider: 'anthropic' })).toThrow(/ANTHROPIC_API_KEY is not set/);
  });
});
