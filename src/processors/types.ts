import type { TSchema, Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { BlobRef, BlobWriter } from '../blobs/types.js';

/** A progress report from a handler: `percent` is 0..100 within the whole job. */
export interface ProgressUpdate {
  percent: number;
  stage?: string;
  message?: string;
}

export interface ProcessorContext<Options> {
  /** The job's input image bytes, exactly as uploaded or downloaded; undefined for processors without input. */
  input: Buffer | undefined;
  /** Options already validated against the processor's schema, defaults applied. */
  options: Options;
  /** Aborted on cancel, timeout or shutdown; a handler must stop promptly and start no new work. */
  signal: AbortSignal;
  progress(update: ProgressUpdate): void;
  blobs: BlobWriter;
  log: Logger;
}

/** One image a job produced. */
export interface ProcessorOutput extends BlobRef {
  contentType: string;
  width: number;
  height: number;
}

export interface ProcessorResult {
  outputs: ProcessorOutput[];
  /** Free JSON shown to the caller as the job's `result` (e.g. detected face boxes). */
  result?: Record<string, unknown>;
}

export interface Processor<S extends TSchema = TSchema> {
  /** The job type name callers submit, e.g. `remove-background`. */
  type: string;
  /** TypeBox schema of the options; validated at submit time with defaults applied. */
  optionsSchema: S;
  /** Whether a job of this type needs an input image. */
  needsInput: boolean;
  /** Checks beyond the schema (e.g. a colour string); throws a `validation_failed` PixqError. */
  validate?(options: Static<S>): void;
  run(ctx: ProcessorContext<Static<S>>): Promise<ProcessorResult>;
  /** Worker slots per process for this type unless PIXQ_WORKER_CONCURRENCY names it. */
  concurrency?: number;
  /**
   * The type's global rate limit (jobs started per window, across all workers) written when the type has no
   * settings yet; an operator changes it with `PUT /v1/job-types/:type`. For types that call a paid API.
   */
  rateLimit?: { limit: number; windowMs: number };
  /** Releases what the processor holds (model sessions, threads); called at shutdown. */
  close?(): Promise<void>;
}
