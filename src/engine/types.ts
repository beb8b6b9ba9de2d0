import type { JobState } from '../store/index.js';

export type { JobState };

export interface JobProgress {
  percent: number;
  stage: string | null;
  message: string | null;
}

export interface JobError {
  code: string;
  message: string;
  retryable: boolean;
}

export interface JobOutput {
  blob: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
}

/** A job as the engine hands it to workers and the API. Times are epoch milliseconds. */
export interface Job {
  id: string;
  vendorId: string;
  type: string;
  state: JobState;
  priority: number;
  options: Record<string, unknown>;
  inputBlob: string | null;
  inputUrl: string | null;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  runAt: number;
  progress: JobProgress;
  result: Record<string, unknown> | null;
  error: JobError | null;
  idempotencyKey: string | null;
  batchId: string | null;
  metadata: Record<string, unknown> | null;
  /** Where the job's own callback goes when it finishes (besides the vendor's endpoints). */
  webhookUrl: string | null;
  template: string | null;
  /** The asset path its first output goes to when it succeeds; null: not published. */
  publishPath: string | null;
  /** Why that publish was refused (the storage quota); the job succeeded all the same. */
  publishError: { code: string; message: string } | null;
  leaseOwner: string | null;
  cancelRequested: boolean;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** What a caller submits. Unset fields take the engine's defaults. */
export interface JobSpec {
  type: string;
  options?: Record<string, unknown>;
  inputBlob?: string;
  inputUrl?: string;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  backoff?: { baseMs?: number; maxMs?: number };
  /** Delay before the first attempt. */
  delayMs?: number;
  idempotencyKey?: string;
  metadata?: Record<string, unknown>;
  /** A URL already checked against the SSRF rules, told when the job finishes. */
  webhookUrl?: string;
  /** The template the submission named (its type and options are already in `type` and `options`). */
  template?: string;
  /** Publish the first output as an asset when the job succeeds: at `path`, or at `prefix` + the job id. */
  publish?: { path: string } | { prefix: string };
}

/** Published on every state change and progress update; `id` orders events and lets SSE clients resume. */
export interface JobEvent {
  id: number;
  kind: 'state' | 'progress';
  jobId: string;
  vendorId: string;
  batchId: string | null;
  type: string;
  state: JobState;
  attempts: number;
  progress: JobProgress;
  error: JobError | null;
  at: number;
}

export interface Vendor {
  id: string;
  name: string;
  weight: number;
  maxRunning: number | null;
  maxQueued: number | null;
  status: 'active' | 'suspended';
  rateLimits: Record<string, { limit: number; windowMs: number }> | null;
  /** The most bytes its uploads and assets may take; null: the configured default applies. */
  maxStorageBytes: number | null;
  /** The bytes its uploads and assets take now. */
  storageBytes: number;
  createdAt: number;
}

/** A vendor's named, durable image. */
export interface Asset {
  vendorId: string;
  path: string;
  blob: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  /** Changes exactly when the path gets new bytes (it is derived from them). */
  version: string;
  /** The job whose output it is; that job may have been deleted by retention since. */
  jobId: string | null;
  createdAt: number;
  updatedAt: number;
}
