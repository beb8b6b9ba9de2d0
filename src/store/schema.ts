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
  /** The most bytes its uploads and assets may take; null: PIXQ_MAX_STORAGE_BYTES (unset there: no limit). */
  max_storage_bytes: number | null;
  /** The bytes its uploads and assets take now, kept in the transactions that add or remove them. */
  storage_bytes: Generated<number>;
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
  /** Where this job's own one-off callback goes when it finishes (checked against the SSRF rules). */
  webhook_url: string | null;
  /** The template a job was submitted by, if any; `type` and `options` are already resolved from it. */
  template: string | null;
  /** The asset path its first output is published at when it succeeds; null: not published. */
  publish_path: string | null;
  /** JSON `{code, message}` when that publish was refused (the storage quota); the job still succeeded. */
  publish_error: string | null;
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

/** A vendor's secret for signing its jobs' one-off callbacks; rotated like an endpoint's. */
export interface WebhookCallbackSecretsTable {
  vendor_id: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  created_at: number;
  updated_at: number;
}

export interface WebhookDeliveriesTable {
  /**
   * `<endpoint id>.<event id>`, `<endpoint id>.batch.<batch id>`, or `callback.<event id>` for a job's own
   * callback: the same event never fans out twice.
   */
  id: string;
  /** Null for a job's own callback, which has its `url` instead (exactly one of the two is set). */
  endpoint_id: string | null;
  url: string | null;
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

/** A vendor's named, durable image (see src/engine/assets.ts). */
export interface AssetsTable {
  vendor_id: string;
  path: string;
  blob: string;
  content_type: string;
  width: number;
  height: number;
  bytes: number;
  /** Derived from the bytes: a new version exactly when the path gets new bytes. */
  version: string;
  /** The job whose output this is; the job may have been deleted since (retention never deletes assets). */
  job_id: string | null;
  created_at: number;
  updated_at: number;
}

/** A rendered delivery variant: the cache of src/delivery (key: source blob, canonical options, format). */
export interface AssetVariantsTable {
  key: string;
  blob: string;
  content_type: string;
  width: number;
  height: number;
  bytes: number;
  created_at: number;
  /** When it was last served (recorded in batches): what least-recently-used eviction orders by. */
  last_used_at: number;
}

/** One row: the bytes all variants take, kept in the transactions that add or evict them. */
export interface DeliveryCacheTable {
  id: number;
  bytes: number;
}

/** A vendor's delivery settings: the signing key and salt (hex, imgproxy's format) and what URLs may ask for. */
export interface VendorDeliveryTable {
  vendor_id: string;
  key: string;
  salt: string;
  /** After a rotation, the replaced pair keeps verifying until `previous_until`. */
  previous_key: string | null;
  previous_salt: string | null;
  previous_until: number | null;
  /** 1: `insecure` in place of a signature is accepted, as imgproxy does without a key. */
  public: number;
  /** 1: URLs may name presets only (and a cache buster and a format), never free options. */
  presets_only: number;
  /** JSON object: preset name to its options, in imgproxy's URL form (`rs:fill:300:300/f:webp`). */
  presets: string;
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
  webhook_callback_secrets: WebhookCallbackSecretsTable;
  blobs: BlobsTable;
  templates: TemplatesTable;
  assets: AssetsTable;
  asset_variants: AssetVariantsTable;
  delivery_cache: DeliveryCacheTable;
  vendor_delivery: VendorDeliveryTable;
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
export type WebhookCallbackSecretRow = Selectable<WebhookCallbackSecretsTable>;
export type TemplateRow = Selectable<TemplatesTable>;
export type AssetRow = Selectable<AssetsTable>;
export type AssetVariantRow = Selectable<AssetVariantsTable>;
export type VendorDeliveryRow = Selectable<VendorDeliveryTable>;
