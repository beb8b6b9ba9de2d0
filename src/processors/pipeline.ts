import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { BlobRef, BlobWriter } from '../blobs/types.js';
import type { Config } from '../config.js';
import { PixqError, validationFailed } from '../errors.js';
import { parseOptions } from './options.js';
import { throwIfAborted } from './abort.js';
import type { Processor, ProcessorContext, ProcessorResult, ProgressUpdate } from './types.js';

export const MAX_STEPS = 8;

export const pipelineOptionsSchema = Type.Object(
  {
    steps: Type.Array(
      Type.Object(
        {
          type: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
          options: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_STEPS },
    ),
  },
  { additionalProperties: false },
);
export type PipelineOptions = Static<typeof pipelineOptionsSchema>;
type Step = PipelineOptions['steps'][number];

/**
 * Keeps an intermediate step's image in memory: only the last step's output is worth a place in the blob store,
 * and storing the rest would leave unreferenced objects behind.
 */
export class MemoryBlobWriter implements BlobWriter {
  private readonly blobs = new Map<string, Buffer>();

  async put(data: Buffer, _contentType: string): Promise<BlobRef> {
    const key = createHash('sha256').update(data).digest('hex');
    this.blobs.set(key, data);
    return { key, bytes: data.length };
  }

  get(key: string): Buffer | undefined {
    return this.blobs.get(key);
  }
}

/**
 * Runs other processors in order, each step's first output feeding the next. `resolve` looks a job type up in
 * the registry the pipeline is part of (passed in rather than imported, so the registry can include it).
 */
export function createPipeline(
  resolve: (type: string) => Processor | undefined,
  _config: Config,
): Processor<typeof pipelineOptionsSchema> {
  return {
    type: 'pipeline',
    optionsSchema: pipelineOptionsSchema,
    needsInput: true,
    validate: (options) => {
      options.steps.forEach((step, index) => stepProcessor(resolve, step, index));
    },
    run: (ctx) => runPipeline(ctx, resolve),
  };
}

/** Resolves a step and validates its options, naming the step in every error. */
function stepProcessor(
  resolve: (type: string) => Processor | undefined,
  step: Step,
  index: number,
): { processor: Processor; options: unknown } {
  const where = `options.steps[${index}]`;
  if (step.type === 'pipeline') throw validationFailed(`${where}.type: a pipeline cannot contain a pipeline`);
  const processor = resolve(step.type);
  if (!processor) throw validationFailed(`${where}.type: unknown job type "${step.type}"`);
  // A step would escape the global rate limit its type declares (a paid API's calls per minute).
  if (processor.rateLimit)
    throw validationFailed(`${where}.type: ${step.type} runs only as its own job, not as a pipeline step`);
  try {
    return { processor, options: parseOptions(processor, step.options ?? {}) };
  } catch (err) {
    if (!(err instanceof PixqError) || err.code !== 'validation_failed') throw err;
    throw validationFailed(`${where} (${step.type}): ${err.message}`, { ...err.details, step: index });
  }
}

async function runPipeline(
  ctx: ProcessorContext<PipelineOptions>,
  resolve: (type: string) => Processor | undefined,
): Promise<ProcessorResult> {
  const steps = ctx.options.steps;
  const summaries: Record<string, unknown>[] = [];
  let input = ctx.input;
  let last: ProcessorResult | undefined;
  for (const [index, step] of steps.entries()) {
    throwIfAborted(ctx.signal);
    const isLast = index === steps.length - 1;
    const { processor, options } = stepProcessor(resolve, step, index);
    const memory = new MemoryBlobWriter();
    const result = await runStep(
      processor,
      {
        input,
        options,
        signal: ctx.signal,
        progress: stepProgress(ctx, index, steps.length, step.type),
        blobs: isLast ? ctx.blobs : memory,
        log: ctx.log.child({ step: index, stepType: step.type }),
      },
      index,
    );
    summaries.push({
      type: step.type,
      outputs: result.outputs.length,
      ...(result.result ? { result: result.result } : {}),
    });
    if (!isLast) input = firstOutput(result, memory, index, step.type);
    last = result;
  }
  throwIfAborted(ctx.signal);
  return { outputs: last?.outputs ?? [], result: { steps: summaries } };
}

/** Errors keep their code and retry policy; the message and details say which step failed. */
async function runStep(processor: Processor, ctx: ProcessorContext<unknown>, index: number): Promise<ProcessorResult> {
  try {
    return await processor.run(ctx);
  } catch (err) {
    if (!(err instanceof PixqError)) throw err;
    throw new PixqError(err.code, `step ${index} (${processor.type}): ${err.message}`, {
      retryable: err.retryable,
      status: err.status,
      details: { ...err.details, step: index, stepType: processor.type },
      cause: err,
    });
  }
}

function firstOutput(result: ProcessorResult, memory: MemoryBlobWriter, index: number, type: string): Buffer {
  const first = result.outputs[0];
  const bytes = first ? memory.get(first.key) : undefined;
  if (!bytes) {
    throw new PixqError('pipeline_step_no_output', `step ${index} (${type}) produced no image for the next step`, {
      status: 422,
      details: { step: index, stepType: type },
    });
  }
  return bytes;
}

/** Each step gets an equal share of the job's 0..100; stages read `<index>:<type>/<stage>`. */
function stepProgress(
  ctx: ProcessorContext<PipelineOptions>,
  index: number,
  count: number,
  type: string,
): (update: ProgressUpdate) => void {
  const share = 100 / count;
  return (update) => {
    const within = Math.min(100, Math.max(0, update.percent));
    ctx.progress({
      percent: Math.floor(index * share + (within * share) / 100),
      stage: `${index}:${type}/${update.stage ?? 'run'}`,
      message: update.message,
    });
  };
}
