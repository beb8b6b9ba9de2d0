import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Sharp } from 'sharp';
import { PixqError } from '../../errors.js';

/**
 * The `anthropic` provider of label-analysis: the label image (at most 1568 px on the long side, the size
 * Claude's vision works at without downscaling again) and the OCR text go to the Messages API, and the answer
 * comes back through one forced tool call whose input must match `LabelReview`.
 */

const Text = (maxLength: number) => Type.String({ maxLength });

/** What the model is asked to return; also the schema its answer is checked against. */
export const LabelReview = Type.Object(
  {
    productName: Type.Optional(Text(500)),
    summary: Text(4000),
    compliant: Type.Boolean({ description: "Whether the label meets the named marketplaces' rules for the category." }),
    fields: Type.Object(
      {
        netQuantity: Type.Optional(Text(200)),
        bestBefore: Type.Optional(Text(200)),
        lot: Type.Optional(Text(200)),
        ingredients: Type.Optional(Text(8000)),
        allergens: Type.Optional(Type.Array(Text(100), { maxItems: 50 })),
        manufacturer: Type.Optional(Text(1000)),
      },
      { additionalProperties: false },
    ),
    findings: Type.Array(
      Type.Object(
        {
          severity: Type.Union([Type.Literal('error'), Type.Literal('warning'), Type.Literal('info')]),
          issue: Text(2000),
          marketplace: Type.Optional(Text(100)),
          suggestion: Type.Optional(Text(2000)),
        },
        { additionalProperties: false },
      ),
      { maxItems: 100 },
    ),
  },
  { additionalProperties: false },
);
export type LabelReview = Static<typeof LabelReview>;

const TOOL_NAME = 'record_label_review';
const checkReview = TypeCompiler.Compile(LabelReview);
// A plain JSON Schema object for the API (TypeBox adds symbol keys that JSON drops).
const INPUT_SCHEMA = JSON.parse(JSON.stringify(LabelReview)) as Anthropic.Tool.InputSchema;
const MAX_EDGE = 1568;
const MAX_TOKENS = 4096;

export interface ReviewRequest {
  image: Sharp;
  ocrText: string;
  category: string;
  marketplaces: string[];
  productName?: string;
}

export interface ProviderResult {
  provider: 'anthropic';
  model: string;
  usage: { inputTokens: number; outputTokens: number };
  review: LabelReview;
}

export interface AnthropicSettings {
  apiKey: string | undefined;
  baseUrl: string | undefined;
  model: string;
}

export class AnthropicReviewer {
  private client: Anthropic | undefined;

  constructor(private readonly settings: AnthropicSettings) {}

  get configured(): boolean {
    return this.settings.apiKey !== undefined;
  }

  async review(request: ReviewRequest, signal: AbortSignal): Promise<ProviderResult> {
    const image = await request.image
      .clone()
      .resize(MAX_EDGE, MAX_EDGE, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#ffffff' })
      .jpeg({ quality: 85 })
      .toBuffer();
    // The engine's attempts are the one retry loop (durable, with the type's rate limit and retry-after), so
    // the SDK does not retry inside an attempt.
    this.client ??= new Anthropic({
      apiKey: this.settings.apiKey,
      baseURL: this.settings.baseUrl ?? null,
      maxRetries: 0,
    });
    let message: Anthropic.Message;
    try {
      message = await this.client.messages.create(
        {
          model: this.settings.model,
          max_tokens: MAX_TOKENS,
          tools: [
            { name: TOOL_NAME, description: 'Record the review of the product label.', input_schema: INPUT_SCHEMA },
          ],
          tool_choice: { type: 'tool', name: TOOL_NAME },
          messages: [
            {
              role: 'user',
              content: [
                { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: image.toString('base64') } },
                { type: 'text', text: prompt(request) },
              ],
            },
          ],
        },
        { signal },
      );
    } catch (err) {
      throw providerError(err);
    }
    return {
      provider: 'anthropic',
      model: message.model,
      usage: { inputTokens: message.usage.input_tokens, outputTokens: message.usage.output_tokens },
      review: toolInput(message),
    };
  }
}

function prompt(request: ReviewRequest): string {
  return [
    'Review this product label for sale on the marketplaces named below.',
    `Category: ${request.category}`,
    `Marketplaces: ${request.marketplaces.length > 0 ? request.marketplaces.join(', ') : 'none named (general labelling rules)'}`,
    ...(request.productName ? [`Product name given by the seller: ${request.productName}`] : []),
    'Text read from the label by OCR (may contain errors; the image is authoritative):',
    '<ocr>',
    request.ocrText.slice(0, 20_000),
    '</ocr>',
    `Read the label's fields, list every problem against the marketplaces' labelling rules, and answer with the ${TOOL_NAME} tool.`,
  ].join('\n');
}

/** The forced tool call's input, checked against the schema: anything else is a permanent failure. */
function toolInput(message: Anthropic.Message): LabelReview {
  const call = message.content.find((block) => block.type === 'tool_use' && block.name === TOOL_NAME);
  if (!call || call.type !== 'tool_use') {
    throw new PixqError(
      'provider_invalid_answer',
      `the model answered without calling ${TOOL_NAME} (stop reason ${message.stop_reason})`,
      { status: 502 },
    );
  }
  if (!checkReview.Check(call.input)) {
    const first = checkReview.Errors(call.input).First();
    throw new PixqError(
      'provider_invalid_answer',
      `the model's answer does not match the schema: ${first?.path || '/'} ${first?.message ?? ''}`.trim(),
      {
        status: 502,
      },
    );
  }
  return call.input;
}

/**
 * 429 (rate limited) waits at least the API's retry-after, 529 (overloaded), 5xx and lost connections are
 * tried again; anything else the API refuses (400 bad request, 401 key, 413 too large) will not get better.
 */
function providerError(err: unknown): unknown {
  if (err instanceof APIUserAbortError) return err;
  if (err instanceof APIConnectionError) {
    return new PixqError('provider_unavailable', `the Anthropic API could not be reached: ${err.message}`, {
      retryable: true,
      status: 503,
      cause: err,
    });
  }
  if (!(err instanceof APIError) || err.status === undefined) return err;
  if (err.status === 429) {
    return new PixqError('provider_rate_limited', `the Anthropic API is rate limiting: ${err.message}`, {
      retryable: true,
      status: 503,
      retryAfterMs: retryAfterMs(err.headers),
      cause: err,
    });
  }
  if (err.status >= 500 || err.status === 408) {
    return new PixqError('provider_unavailable', `the Anthropic API failed (${err.status}): ${err.message}`, {
      retryable: true,
      status: 503,
      cause: err,
    });
  }
  return new PixqError('provider_rejected', `the Anthropic API refused the request (${err.status}): ${err.message}`, {
    status: 502,
    cause: err,
  });
}

/** `retry-after-ms` or `retry-after` (seconds, or an HTTP date), capped at an hour. */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return Math.min(ms, 3_600_000);
  const raw = headers?.get('retry-after');
  if (!raw) return undefined;
  const delay = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) * 1000 : Date.parse(raw) - Date.now();
  return Number.isFinite(delay) && delay > 0 ? Math.min(delay, 3_600_000) : undefined;
}
