import { PixqApiError } from './errors.js';
import { delay, eventSourceTransport, fetchTransport, follow, linked, query, type EventTransport } from './live.js';
import {
  FINISHED_STATES,
  type ApiKey,
  type ApiKeyList,
  type Batch,
  type BulkAccepted,
  type CallbackSecret,
  type BulkActionResult,
  type JobCount,
  type JobEventList,
  type JobEventsQuery,
  type JobFilter,
  type JobList,
  type JobType,
  type JobTypeList,
  type JobTypeSettings,
  type KeyIssued,
  type StatsSeries,
  type StatsSeriesQuery,
  type Vendor,
  type VendorCreate,
  type VendorCreated,
  type VendorList,
  type VendorSettings,
  type WhoAmI,
  type WorkerList,
  type EventsFilter,
  type EventToken,
  type EventTokenRequest,
  type Job,
  type JobEvent,
  type JobListQuery,
  type JobSubmission,
  type RequestLimits,
  type Template,
  type TemplateCreate,
  type TemplateList,
  type TemplateUpdate,
  type Upload,
  type WebhookDeliveryList,
  type Asset,
  type AssetList,
  type AssetListQuery,
  type Delivery,
  type DeliveryPresets,
} from './schemas.js';

export interface RetryOptions {
  /** Tries in all, the first included (default 5). */
  attempts?: number;
  /** The longest single wait; a Retry-After beyond it is given up on (default 60 s). */
  maxDelayMs?: number;
  /** Told before each wait, e.g. to print "rate limited, waiting 40 s". */
  onRetry?: (info: { error: PixqApiError; attempt: number; delayMs: number }) => void;
}

export interface PixqClientOptions {
  /** Where the API is, e.g. `https://pixq.example.com` (no trailing path). */
  baseUrl: string;
  /** A vendor (or admin) key; sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** A fetch to use instead of the global one (a proxy agent, a test double of the network). */
  fetch?: typeof fetch;
  /** Retry 429 and 503 answers with backoff (honouring Retry-After). Off unless given. */
  retry?: RetryOptions | boolean;
  /**
   * How live updates travel: `fetch` (a streamed response, the key in a header) or `eventsource` (the
   * browser's EventSource with an event token in the URL). Default: `eventsource` in browsers, else `fetch`.
   */
  liveTransport?: 'fetch' | 'eventsource';
  /**
   * Where event tokens come from for `eventsource`. Default: POST /v1/events/tokens with `apiKey`. A browser
   * app that must not hold a key asks its own backend, which calls `client.eventToken()` for it.
   */
  eventToken?: (scope: EventsFilter) => Promise<string>;
  /** Polling interval once live events are refused (default 1 s). */
  pollIntervalMs?: number;
  /** An event stream silent this long counts as blocked (default 45 s; the server sends a heartbeat every 15 s). */
  stallMs?: number;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Rejects with a TimeoutError (DOMException) after this long. */
  timeoutMs?: number;
  /** Every event of the followed job as it arrives (progress included). */
  onEvent?: (event: JobEvent) => void;
}

export interface WaitBatchOptions extends Omit<WaitOptions, 'onEvent'> {
  /** The batch's counts as they change (estimated from events between reads, exact at the end). */
  onProgress?: (batch: Batch) => void;
}

export interface EventsOptions {
  signal?: AbortSignal;
  /** Resume after this event id (an id seen on an earlier stream). */
  lastEventId?: number;
}

/** A file for a multipart request: a Blob/File, or bytes with a name. */
export type FileInput = Blob | { bytes: Uint8Array; name: string; type?: string };

export type SubmitSpec = JobSubmission & {
  /** Send this image in the request itself (multipart) instead of `input`. */
  file?: FileInput;
  /** The same key returns the same job (Idempotency-Key). */
  idempotencyKey?: string;
};

/** Files sharing one job type, or one template, and options. */
export type BulkFiles = {
  files: FileInput[];
  options?: Record<string, unknown>;
  /** Each job's own callback when it finishes. */
  webhookUrl?: string;
  /** Publish each output as an asset: at its job id (`true`), or at `prefix` + its job id. */
  publish?: true | { prefix: string };
} & ({ type: string } | { template: string });

export interface VendorStatus {
  vendor: { id: string; name: string; [key: string]: unknown };
  rateLimits: Record<string, { limit: number; windowMs: number }>;
  limits: RequestLimits;
  usage: unknown;
}

/** A vendor's assets: named, durable images with permanent delivery URLs (`client.assets`). */
export interface AssetsApi {
  /** Every asset (under `prefix`, if given), in path order, reading page after page as the loop goes. */
  list(query?: Omit<AssetListQuery, 'cursor'>): AsyncGenerator<Asset>;
  /** One page; pass `nextCursor` back as `cursor` for the next. */
  page(query?: AssetListQuery): Promise<AssetList>;
  get(path: string): Promise<Asset>;
  /** Stores an image at `path`, replacing what was there (a new version when the bytes differ). */
  put(path: string, file: FileInput): Promise<Asset>;
  delete(path: string): Promise<void>;
  /** Publishes a succeeded job's first output: at `path`, else the path it was submitted with, else its id. */
  publish(jobId: string, path?: string): Promise<Asset>;
}

/** The pixq /v1 API: typed calls, live job updates with resume, and one error type. */
export class PixqClient {
  readonly baseUrl: string;
  readonly assets: AssetsApi;
  private readonly fetchImpl: typeof fetch;
  private readonly retryPolicy: RetryOptions | undefined;
  private readonly live: EventTransport;
  private readonly pollIntervalMs: number;

  constructor(private readonly options: PixqClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    // Bound: a browser's fetch called on another `this` throws "Illegal invocation".
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.retryPolicy = options.retry === true ? {} : options.retry || undefined;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    const inBrowser = typeof EventSource === 'function' && typeof document !== 'undefined';
    const transport = options.liveTransport ?? (inBrowser ? 'eventsource' : 'fetch');
    this.live =
      transport === 'eventsource'
        ? eventSourceTransport(
            this.baseUrl,
            options.eventToken ?? (async (scope) => (await this.eventToken(scope)).token),
          )
        : fetchTransport((path, init) => this.send(path, init), options.stallMs ?? 45_000);
    this.assets = this.assetsApi();
  }

  /** The vendor's delivery endpoint, key and salt (hex), for imgproxy's URL builders and `deliveryUrl`. */
  delivery(): Promise<Delivery> {
    return this.request('GET', '/v1/delivery');
  }

  /** Turns public (unsigned) delivery or presets-only URLs on or off. */
  updateDelivery(changes: { public?: boolean; presetsOnly?: boolean }): Promise<Delivery> {
    return this.json('PATCH', '/v1/delivery', changes);
  }

  /** A new delivery key and salt; URLs signed with the old pair keep working for 24 hours. */
  rotateDeliveryKey(): Promise<Delivery> {
    return this.request('POST', '/v1/delivery/rotate');
  }

  deliveryPresets(): Promise<DeliveryPresets> {
    return this.request('GET', '/v1/delivery/presets');
  }

  /** Replaces the named option sets (`{thumb: 'rs:fill:300:300/f:webp'}`). */
  setDeliveryPresets(presets: Record<string, string>): Promise<DeliveryPresets> {
    return this.json('PUT', '/v1/delivery/presets', { presets });
  }

  private assetsApi(): AssetsApi {
    // Asset paths keep their slashes in the URL: `/v1/assets/products/1/main`.
    const at = (path: string) => `/v1/assets/${encodeURI(path)}`;
    const page = (q: AssetListQuery = {}) => this.request<AssetList>('GET', `/v1/assets${query(q)}`);
    return {
      page,
      async *list(q = {}) {
        let cursor: string | undefined;
        do {
          const next = await page({ ...q, cursor });
          yield* next.assets;
          cursor = next.nextCursor ?? undefined;
        } while (cursor);
      },
      get: (path) => this.request('GET', at(path)),
      put: (path, file) => {
        const form = new FormData();
        form.append('image', ...fileEntry(file));
        return this.request('PUT', at(path), { body: form });
      },
      delete: async (path) => {
        await this.send(at(path), { method: 'DELETE' });
      },
      publish: (jobId, path) =>
        this.json('POST', `/v1/jobs/${encodeURIComponent(jobId)}/publish`, path === undefined ? {} : { path }),
    };
  }

  /** Submits one job: JSON with `input`, or multipart when `file` is given. Answers the queued job. */
  async submit(spec: SubmitSpec): Promise<Job> {
    const { file, idempotencyKey, ...submission } = spec;
    const headers: Record<string, string> = idempotencyKey ? { 'idempotency-key': idempotencyKey } : {};
    if (!file) return this.json('POST', '/v1/jobs', submission, headers);
    const form = formOf(submission);
    form.append('image', ...fileEntry(file));
    return this.request('POST', '/v1/jobs', { body: form, headers });
  }

  /** Submits many jobs in one transaction: specs as JSON, or files sharing a type and options (multipart). */
  async submitBulk(jobs: JobSubmission[] | BulkFiles): Promise<BulkAccepted> {
    if (Array.isArray(jobs)) return this.json('POST', '/v1/jobs/bulk', { jobs });
    const { files, ...fields } = jobs;
    const form = formOf(fields);
    for (const file of files) form.append('image', ...fileEntry(file));
    return this.request('POST', '/v1/jobs/bulk', { body: form });
  }

  /** The vendor's templates and the built-in ones. */
  templates(): Promise<TemplateList> {
    return this.request('GET', '/v1/templates');
  }

  template(name: string): Promise<Template> {
    return this.request('GET', `/v1/templates/${encodeURIComponent(name)}`);
  }

  /** Stores a named job setting; refused unless a submission with that type and those options would be accepted. */
  createTemplate(template: TemplateCreate): Promise<Template> {
    return this.json('POST', '/v1/templates', template);
  }

  /** Changes a template's type or options (`options` replaces the stored ones whole). */
  updateTemplate(name: string, changes: TemplateUpdate): Promise<Template> {
    return this.json('PUT', `/v1/templates/${encodeURIComponent(name)}`, changes);
  }

  async deleteTemplate(name: string): Promise<void> {
    await this.send(`/v1/templates/${encodeURIComponent(name)}`, { method: 'DELETE' });
  }

  /** Uploads an image once, for use as `input: {uploadId}` in several jobs. */
  async upload(file: FileInput): Promise<Upload> {
    const form = new FormData();
    form.append('image', ...fileEntry(file));
    return this.request('POST', '/v1/uploads', { body: form });
  }

  job(id: string): Promise<Job> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }

  batch(id: string): Promise<Batch> {
    return this.request('GET', `/v1/batches/${encodeURIComponent(id)}`);
  }

  /** Every job matching the filter, newest first, reading page after page as the loop goes. */
  async *jobs(filter: Omit<JobListQuery, 'cursor'> = {}): AsyncGenerator<Job> {
    let cursor: string | undefined;
    do {
      const page = await this.listJobs({ ...filter, cursor });
      yield* page.jobs;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /**
   * One page of jobs matching the filter, newest first; pass `nextCursor` back as `cursor` for the next.
   * `metadata: ['recordId=42']` matches top-level metadata values (see METADATA_INDEX); the admin key lists
   * every vendor's jobs, or one vendor's with `vendorId`.
   */
  listJobs(filter: JobListQuery = {}): Promise<JobList> {
    return this.request('GET', `/v1/jobs${query(filter)}`);
  }

  /** How many jobs match the filter. */
  countJobs(filter: JobFilter = {}): Promise<JobCount> {
    return this.request('GET', `/v1/jobs/count${query(filter)}`);
  }

  /** Cancels the queued, delayed and running jobs matching the filter (up to MAX_BULK_ACTION per call). */
  cancelMatching(filter: JobFilter = {}): Promise<BulkActionResult> {
    return this.json('POST', '/v1/jobs/cancel', filter);
  }

  /** Queues again the failed and cancelled jobs matching the filter (up to the server's bulk limit per call). */
  retryMatching(filter: JobFilter = {}): Promise<BulkActionResult> {
    return this.json('POST', '/v1/jobs/retry', filter);
  }

  cancel(id: string): Promise<Job> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string): Promise<Job> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`);
  }

  /** Statistics: counts by state, wait/run percentiles, throughput. */
  stats(windowMinutes?: number): Promise<Record<string, unknown>> {
    return this.request('GET', `/v1/stats${query({ windowMinutes })}`);
  }

  /** Per-minute finished and failed counts with wait and run percentiles, oldest minute first. */
  statsSeries(opts: StatsSeriesQuery = {}): Promise<StatsSeries> {
    return this.request('GET', `/v1/stats/series${query(opts)}`);
  }

  /** Who the key belongs to: a vendor (its id and name) or the operator (admin key). */
  whoami(): Promise<WhoAmI> {
    return this.request('GET', '/v1/whoami');
  }

  /** Admin: every vendor. */
  vendors(): Promise<VendorList> {
    return this.request('GET', '/v1/vendors');
  }

  /** Admin: one vendor. */
  vendor(id: string): Promise<Vendor> {
    return this.request('GET', `/v1/vendors/${encodeURIComponent(id)}`);
  }

  /** Admin: a new vendor and its first API key (shown only in this answer). */
  createVendor(body: VendorCreate): Promise<VendorCreated> {
    return this.json('POST', '/v1/vendors', body);
  }

  /** Admin: change a vendor's weight, caps, quotas, rate limits or status. */
  updateVendor(id: string, body: VendorSettings): Promise<Vendor> {
    return this.json('PATCH', `/v1/vendors/${encodeURIComponent(id)}`, body);
  }

  /** Admin: a vendor's keys (prefixes only). */
  vendorKeys(vendorId: string): Promise<ApiKeyList> {
    return this.request('GET', `/v1/vendors/${encodeURIComponent(vendorId)}/keys`);
  }

  /** Admin: another key for a vendor (shown only in this answer). */
  issueKey(vendorId: string): Promise<KeyIssued> {
    return this.request('POST', `/v1/vendors/${encodeURIComponent(vendorId)}/keys`);
  }

  /** Admin: revoke one of a vendor's keys. */
  revokeKey(vendorId: string, keyId: string): Promise<ApiKey> {
    return this.request('DELETE', `/v1/vendors/${encodeURIComponent(vendorId)}/keys/${encodeURIComponent(keyId)}`);
  }

  /** Every job type the server offers (`available`); for the admin key also the types with stored settings. */
  jobTypes(): Promise<JobTypeList> {
    return this.request('GET', '/v1/job-types');
  }

  /** Admin: pause or resume a type, set its global cap or rate limit. */
  configureJobType(type: string, body: JobTypeSettings): Promise<JobType> {
    return this.json('PUT', `/v1/job-types/${encodeURIComponent(type)}`, body);
  }

  /** Admin: stop claiming jobs of this type (queued ones wait). */
  pauseType(type: string): Promise<JobType> {
    return this.request('POST', `/v1/job-types/${encodeURIComponent(type)}/pause`);
  }

  /** Admin: claim jobs of this type again. */
  resumeType(type: string): Promise<JobType> {
    return this.request('POST', `/v1/job-types/${encodeURIComponent(type)}/resume`);
  }

  /** Admin: workers that reported recently, with their slots and running jobs. */
  workers(): Promise<WorkerList> {
    return this.request('GET', '/v1/workers');
  }

  /** The calling vendor, its rate limits and the request limits (files per bulk request, bytes per file). */
  me(): Promise<VendorStatus> {
    return this.request('GET', '/v1/vendors/me');
  }

  /** An output image's bytes: the first by default, or `outputs[index]` through its signed URL. */
  async download(id: string, index = 0): Promise<Blob> {
    if (index === 0) return (await this.send(`/v1/jobs/${encodeURIComponent(id)}/output`, {})).blob();
    const output = (await this.job(id)).outputs[index];
    if (!output) throw new PixqApiError(404, 'not_found', `job ${id} has no output ${index}`, undefined, undefined);
    return (await this.send(output.url, {})).blob();
  }

  /** The job's input image as it was uploaded (a job submitted by URL keeps none: a 404 problem). */
  async jobInput(id: string): Promise<Blob> {
    return (await this.send(`/v1/jobs/${encodeURIComponent(id)}/input`, {})).blob();
  }

  /** One page of the job's stored events, oldest first (attempts, failures, progress); pass `nextAfterId` back as `afterId`. */
  jobEvents(id: string, opts: JobEventsQuery = {}): Promise<JobEventList> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/events${query(opts)}`);
  }

  /** The latest webhook deliveries of a job's events: to the vendor's endpoints and to its own `webhookUrl`. */
  jobDeliveries(id: string, opts: { limit?: number } = {}): Promise<WebhookDeliveryList> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/deliveries${query(opts)}`);
  }

  /** The secret that signs jobs' own `webhookUrl` callbacks (Standard Webhooks `whsec_`), created on first read. */
  callbackSecret(): Promise<CallbackSecret> {
    return this.request('GET', '/v1/webhooks/callback-secret');
  }

  /** A new callback secret; the previous one keeps signing alongside it for 24 h. */
  rotateCallbackSecret(): Promise<CallbackSecret> {
    return this.request('POST', '/v1/webhooks/callback-secret/rotate');
  }

  /** A short-lived read-only token for `GET /v1/events?token=` (for EventSource, which sends no headers). */
  eventToken(scope: EventTokenRequest = {}): Promise<EventToken> {
    return this.json('POST', '/v1/events/tokens', scope);
  }

  /**
   * Resolves with the job once it has finished (succeeded, failed or cancelled). Follows live events,
   * resuming with Last-Event-ID across broken connections and server restarts; polls when the event
   * stream is refused (a proxy in the way).
   */
  wait(id: string, opts: WaitOptions = {}): Promise<Job> {
    return withDeadline(opts, (signal) => this.followJob(id, signal, opts));
  }

  private async followJob(id: string, signal: AbortSignal, opts: WaitOptions): Promise<Job> {
    let final: Job | undefined;
    const finished = async () => {
      const job = await this.job(id);
      if (FINISHED_STATES.has(job.state)) final = job;
      return final !== undefined;
    };
    await follow(
      this.live,
      { jobId: id },
      {
        check: finished,
        poll: finished,
        onEvent: async (event) => {
          opts.onEvent?.(event);
          return event.kind === 'state' && FINISHED_STATES.has(event.state) && finished();
        },
      },
      { signal, pollIntervalMs: this.pollIntervalMs },
    );
    return final!;
  }

  /** Resolves with the batch's counts once every job in it has finished; `onProgress` sees them change. */
  waitBatch(batchId: string, opts: WaitBatchOptions = {}): Promise<Batch> {
    return withDeadline(opts, (signal) => this.followBatch(batchId, signal, opts));
  }

  private async followBatch(batchId: string, signal: AbortSignal, opts: WaitBatchOptions): Promise<Batch> {
    let base: Batch | undefined;
    let final: Batch | undefined;
    // Jobs seen finishing since `base` was read; may count a job `base` already counted, never misses one.
    const since = new Map<string, string>();
    const read = async () => {
      base = await this.batch(batchId);
      since.clear();
      opts.onProgress?.(base);
      if (finishedCount(base.counts) >= base.total) final = base;
      return final !== undefined;
    };
    await follow(
      this.live,
      { batchId },
      {
        check: read,
        poll: read,
        onEvent: async (event) => {
          if (!base) await read();
          if (event.kind !== 'state' || !FINISHED_STATES.has(event.state)) return false;
          since.set(event.jobId, event.state);
          const estimate = estimated(base!, since);
          if (finishedCount(estimate.counts) < estimate.total) {
            opts.onProgress?.(estimate);
            return false;
          }
          return read(); // looks done: confirm
        },
      },
      { signal, pollIntervalMs: this.pollIntervalMs },
    );
    return final!;
  }

  /** Every event of the caller's jobs (or of one job or batch) until the loop breaks or `signal` aborts. */
  async *events(filter: EventsFilter = {}, opts: EventsOptions = {}): AsyncGenerator<JobEvent> {
    const stop = linked(opts.signal);
    const signal = stop.signal;
    const pending: JobEvent[] = [];
    let wake: (() => void) | undefined;
    let ended: { error: unknown } | undefined;
    const push = (event: JobEvent) => {
      pending.push(event);
      wake?.();
      return false;
    };
    follow(
      this.live,
      filter,
      { check: async () => false, onEvent: push, poll: async () => false },
      { signal, lastEventId: opts.lastEventId, pollIntervalMs: this.pollIntervalMs, refusalsBeforePolling: Infinity },
    )
      .catch((error: unknown) => (ended = { error }))
      .finally(() => wake?.());
    try {
      for (;;) {
        while (pending.length > 0) yield pending.shift()!;
        if (ended) {
          if (stop.signal.aborted) return;
          throw ended.error;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      stop.abort();
    }
  }

  private json<T>(method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.request(method, path, {
      body: JSON.stringify(body),
      headers: { ...headers, 'content-type': 'application/json' },
    });
  }

  private async request<T>(
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const res = await this.send(path, { method, ...init });
    return (await res.json()) as T;
  }

  /** One call with the key; a refusal becomes a PixqApiError, 429/503 are retried when the caller opted in. */
  private async send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.options.apiKey) headers.set('authorization', `Bearer ${this.options.apiKey}`);
    for (let attempt = 1; ; attempt++) {
      const res = await this.fetchImpl(this.baseUrl + path, { ...init, headers });
      if (res.ok) return res;
      const error = await PixqApiError.from(res);
      const delayMs = this.retryDelay(error, attempt);
      if (delayMs === undefined) throw error;
      this.retryPolicy!.onRetry?.({ error, attempt, delayMs });
      await delay(delayMs, init.signal ?? undefined);
    }
  }

  private retryDelay(error: PixqApiError, attempt: number): number | undefined {
    if (!this.retryPolicy || (error.status !== 429 && error.status !== 503)) return undefined;
    if (attempt >= (this.retryPolicy.attempts ?? 5)) return undefined;
    const maxDelayMs = this.retryPolicy.maxDelayMs ?? 60_000;
    if (error.retryAfter !== undefined) {
      const ms = error.retryAfter * 1000;
      return ms > maxDelayMs ? undefined : Math.max(ms, 100);
    }
    // Full jitter, so many clients refused together do not come back together.
    return Math.round(Math.random() * Math.min(maxDelayMs, 500 * 2 ** attempt));
  }
}

/** Runs `fn` with a signal that aborts with the caller's or, after `timeoutMs`, with a TimeoutError. */
async function withDeadline<T>(
  opts: { signal?: AbortSignal; timeoutMs?: number },
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = linked(opts.signal);
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => controller.abort(new DOMException(`gave up after ${opts.timeoutMs} ms`, 'TimeoutError')),
          opts.timeoutMs,
        );
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

function finishedCount(counts: Record<string, number>): number {
  return [...FINISHED_STATES].reduce((sum, state) => sum + (counts[state] ?? 0), 0);
}

/** `base` moved on by the finishes seen since: those jobs leave their unfinished state's count. */
function estimated(base: Batch, since: Map<string, string>): Batch {
  const counts = { ...base.counts };
  for (const state of since.values()) counts[state] = (counts[state] ?? 0) + 1;
  let unfinished = base.total - finishedCount(base.counts);
  for (const state of ['running', 'queued', 'delayed']) {
    const take = Math.min(counts[state] ?? 0, Math.min(since.size, unfinished));
    counts[state] = (counts[state] ?? 0) - take;
    unfinished -= take;
  }
  const done = Math.min(finishedCount(counts), base.total);
  const percent = base.total === 0 ? 100 : Math.max(base.percent, Math.round((done / base.total) * 1000) / 10);
  return { ...base, counts, percent };
}

function formOf(fields: Record<string, unknown>): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    form.append(name, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return form;
}

function fileEntry(file: FileInput): [Blob, string] {
  if (file instanceof Blob) return [file, (file as File).name ?? 'image'];
  return [new Blob([file.bytes as BlobPart], { type: file.type ?? 'application/octet-stream' }), file.name];
}
