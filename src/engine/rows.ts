import type { AssetRow, EventRow, JobEventRow, JobOutputRow, JobRow, VendorRow } from '../store/index.js';
import type { StoredEvent } from '../store/sql/events.js';
import type { Asset, Job, JobEvent, JobOutput, Vendor } from './types.js';

function parseJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    vendorId: row.vendor_id,
    type: row.type,
    state: row.state,
    priority: row.priority,
    options: parseJson(row.options) ?? {},
    inputBlob: row.input_blob,
    inputUrl: row.input_url,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    timeoutMs: row.timeout_ms,
    backoff: { baseMs: row.backoff_base_ms, maxMs: row.backoff_max_ms },
    runAt: row.run_at,
    progress: { percent: row.progress_percent, stage: row.progress_stage, message: row.progress_message },
    result: parseJson(row.result),
    error:
      row.error_code === null
        ? null
        : { code: row.error_code, message: row.error_message ?? '', retryable: row.error_retryable === 1 },
    idempotencyKey: row.idempotency_key,
    batchId: row.batch_id,
    metadata: parseJson(row.metadata),
    webhookUrl: row.webhook_url,
    template: row.template,
    publishPath: row.publish_path,
    publishError: parseJson(row.publish_error),
    leaseOwner: row.lease_owner,
    cancelRequested: row.cancel_requested === 1,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function toOutput(row: JobOutputRow): JobOutput {
  return { blob: row.blob, contentType: row.content_type, width: row.width, height: row.height, bytes: row.bytes };
}

export function toVendor(row: VendorRow): Vendor {
  return {
    id: row.id,
    name: row.name,
    weight: row.weight,
    maxRunning: row.max_running,
    maxQueued: row.max_queued,
    status: row.status,
    rateLimits: parseJson(row.rate_limits),
    maxStorageBytes: row.max_storage_bytes === null ? null : Number(row.max_storage_bytes),
    storageBytes: Number(row.storage_bytes),
    createdAt: row.created_at,
  };
}

export function toAsset(row: AssetRow): Asset {
  return {
    vendorId: row.vendor_id,
    path: row.path,
    blob: row.blob,
    contentType: row.content_type,
    width: row.width,
    height: row.height,
    bytes: Number(row.bytes),
    version: row.version,
    jobId: row.job_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The event columns of a running job once its success is recorded (see finishSucceededJobs). */
export function succeededRow(job: Job): JobEventRow {
  return {
    id: job.id,
    vendor_id: job.vendorId,
    batch_id: job.batchId,
    type: job.type,
    state: 'succeeded',
    attempts: job.attempts,
    progress_percent: 100,
    progress_stage: null,
    progress_message: null,
    error_code: null,
    error_message: null,
    error_retryable: null,
  };
}

const MAX_EVENT_MESSAGE = 500; // keeps every event well under PostgreSQL's 8000-byte NOTIFY limit

/**
 * The event describing a job row's current state; its id is 0 until the event is stored. Built from the
 * row's columns directly: events are written for every state change, so no JSON is parsed here.
 */
export function eventFor(row: JobEventRow, kind: JobEvent['kind'], at: number): JobEvent {
  const clip = (s: string | null) => (s === null ? null : s.slice(0, MAX_EVENT_MESSAGE));
  return {
    kind,
    jobId: row.id,
    vendorId: row.vendor_id,
    batchId: row.batch_id,
    type: row.type,
    state: row.state,
    attempts: row.attempts,
    progress: { percent: row.progress_percent, stage: row.progress_stage, message: clip(row.progress_message) },
    error:
      row.error_code === null
        ? null
        : { code: row.error_code, message: clip(row.error_message) ?? '', retryable: row.error_retryable === 1 },
    at,
    id: 0,
  };
}

/** What an event row stores: its ids and time as columns, the rest as JSON (without what the columns hold). */
export function toStoredEvent(e: JobEvent): StoredEvent {
  const { kind, type, state, attempts, progress, error } = e;
  const payload = JSON.stringify({ kind, type, state, attempts, progress, error });
  return { vendor_id: e.vendorId, job_id: e.jobId, batch_id: e.batchId, payload, created_at: e.at };
}

/** An event as it was published, from its row. */
export function fromStoredEvent(row: EventRow): JobEvent {
  const p = JSON.parse(row.payload) as Pick<JobEvent, 'kind' | 'type' | 'state' | 'attempts' | 'progress' | 'error'>;
  return {
    kind: p.kind,
    jobId: row.job_id,
    vendorId: row.vendor_id,
    batchId: row.batch_id,
    type: p.type,
    state: p.state,
    attempts: p.attempts,
    progress: p.progress,
    error: p.error,
    at: Number(row.created_at),
    id: Number(row.id),
  };
}
