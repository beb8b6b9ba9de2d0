import type { Generated, Selectable } from 'kysely';

/**
 * The tables as Kysely sees them. Both stores use the same portable types: times are integer milliseconds
 * since the epoch, booleans are 0/1, JSON is text. That keeps one query layer for SQLite and PostgreSQL.
 */
export type JobState = 'queued' | 'delayed' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const FINISHED_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];
export const JOB_STATES: readonly JobState[] = ['queued', 'delayed', 'running', 'succeeded', 'failed', 'cancelled'];

export interface VendorsTable {
  id: string;
  name: string;
  weight: number;
  max_running: number | null;
  max_queued: number | null;
  status: 'active' | 'suspended';
  /** JSON overrides of the default rate limits, e.g. {"image":{"limit":100,"windowMs":900000}}. */
  rate_limits: string | null;
  /** Start-time fair queuing: the virtual time at which this vendor's next job would start. */
  virtual_time: number;
  created_at: number;
  updated_at: number;
}

export interface JobsTable {
  id: string;
  vendor_id: string;
  type: string;
  state: JobState;
  /** Higher runs first within a vendor. */
  priority: number;
  options: string;
  input_blob: string | null;
  input_url: string | null;
  attempts: number;
  max_attempts: number;
  backoff_base_ms: number;
  backoff_max_ms: number;
  timeout_ms: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  cancel_requested: number;
  progress_percent: number;
  progress_stage: string | null;
  progress_message: string | null;
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  error_retryable: number | null;
  idempotency_key: string | null;
  batch_id: string | null;
  metadata: string | null;
  /** The template a job was submitted by, if any; `type` and `options` are already resolved from it. */
  template: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/** One indexed top-level metadata value of a job (see sql/job-metadata.ts for which values are). */
export interface JobMetadataTable {
  key: string;
  /** The value as a string: numbers and booleans as JSON writes them. */
  value: string;
  vendor_id: string;
  job_id: string;
}

export interface JobOutputsTable {
  job_id: string;
  idx: number;
  blob: string;
  content_type: string;
  width: number;
  height: number;
  bytes: number;
}

export interface JobTypesTable {
  type: string;
  paused: number;
  max_running: number | null;
  rate_limit: number | null;
  rate_window_ms: number | null;
  window_start: number;
  window_count: number;
}

export interface SchedulerTable {
  id: number;
  virtual_time: number;
}

export interface EventsTable {
  id: Generated<number>;
  vendor_id: string;
  job_id: string;
  batch_id: string | null;
  /** JSON of the JobEvent without the fields the columns hold (id, job, vendor, batch, time). */
  payload: string;
  created_at: number;
}

export interface WorkersTable {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  running: number;
  /** JSON map of job type to slots. */
  slots: string;
  stopping: number;
}

export interface ApiKeysTable {
  id: string;
  vendor_id: string;
  key_hash: string;
  /** The first characters of the key, shown in listings so an operator can tell keys apart. */
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

export interface UploadsTable {
  id: string;
  vendor_id: string;
  blob: string;
  content_type: string;
  bytes: number;
  width: number;
  height: number;
  created_at: number;
}

export interface RateBucketsTable {
  key: string;
  window_start: number;
  count: number;
}

export type WebhookEventType = 'job.succeeded' | 'job.failed' | 'job.cancelled' | 'job.progress' | 'batch.completed';
export const WEBHOOK_EVENT_TYPES: readonly WebhookEventType[] = [
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'batch.completed',
  'job.progress',
];

export interface WebhookEndpointsTable {
  id: string;
  vendor_id: string;
  url: string;
  description: string | null;
  /** JSON array of the WebhookEventTypes this endpoint receives. */
  events: string;
  /** `whsec_` + base64 of the key. */
  secret: string;
  /** After a rotation, the old secret keeps signing alongside the new one until `previous_secret_until`. */
  previous_secret: string | null;
  previous_secret_until: number | null;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  /** When the first of the failures since the last success happened; null while deliveries succeed. */
  failing_since: number | null;
  created_at: number;
  updated_at: number;
}

export type DeliveryState = 'pending' | 'succeeded' | 'failed';

export interface WebhookDeliveriesTable {
  /** `<endpoint id>.<event id>`, or `<endpoint id>.batch.<batch id>`: the same event never fans out twice. */
  id: string;
  endpoint_id: string;
  vendor_id: string;
  event_type: WebhookEventType;
  job_id: string;
  batch_id: string | null;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_status: number | null;
  last_error: string | null;
  last_attempt_at: number | null;
  created_at: number;
  finished_at: number | null;
}

/** A vendor's job template; its name is unique per vendor (the primary key). */
export interface TemplatesTable {
  vendor_id: string;
  name: string;
  type: string;
  /** JSON object: the options as the vendor gave them (defaults are applied when a job is submitted). */
  options: string;
  created_at: number;
  updated_at: number;
}

/** A stored blob the sweep may delete once nothing refers to it (see src/engine/blobs.ts). */
export interface BlobsTable {
  key: string;
  sweep_after: number | null;
}

export interface Database {
  vendors: VendorsTable;
  jobs: JobsTable;
  job_outputs: JobOutputsTable;
  job_metadata: JobMetadataTable;
  job_types: JobTypesTable;
  scheduler: SchedulerTable;
  events: EventsTable;
  workers: WorkersTable;
  api_keys: ApiKeysTable;
  uploads: UploadsTable;
  rate_buckets: RateBucketsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  blobs: BlobsTable;
  templates: TemplatesTable;
}

export type JobRow = Selectable<JobsTable>;
/** The columns a job's event is built from. */
export type JobEventRow = Pick<
  JobRow,
  | 'id'
  | 'vendor_id'
  | 'batch_id'
  | 'type'
  | 'state'
  | 'attempts'
  | 'progress_percent'
  | 'progress_stage'
  | 'progress_message'
  | 'error_code'
  | 'error_message'
  | 'error_retryable'
>;
export type VendorRow = Selectable<VendorsTable>;
export type EventRow = Selectable<EventsTable>;
export type JobOutputRow = Selectable<JobOutputsTable>;
export type JobMetadataRow = Selectable<JobMetadataTable>;
export type JobTypeRow = Selectable<JobTypesTable>;
export type WorkerRow = Selectable<WorkersTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type UploadRow = Selectable<UploadsTable>;
export type WebhookEndpointRow = Selectable<WebhookEndpointsTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type TemplateRow = Selectable<TemplatesTable>;
