import { Type, type Static } from '@sinclair/typebox';

/**
 * The bounds of what one job may ask for: the one definition. The server's engine enforces them on every
 * enqueue (src/engine/limits.ts re-exports them), the request schema below and the server's configuration
 * defaults read them, so every layer refuses the same values.
 */
export const JOB_LIMITS = {
  maxAttempts: { min: 1, max: 100 },
  priority: { min: -1000, max: 1000 },
  timeoutMs: { min: 100, max: 24 * 3600_000 },
  delayMs: { min: 0, max: 365 * 24 * 3600_000 },
} as const;

/**
 * The wire shapes of pixq's /v1 API as TypeBox schemas: the server validates requests and writes
 * /openapi.json with these very objects (src/api/schemas.ts imports them), and the client's types are their
 * `Static<>`, so the two cannot drift apart. Nothing here may import server code: this module ships to browsers.
 */
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const FreeObject = Type.Record(Type.String(), Type.Unknown());
const IsoTime = Type.String({ format: 'date-time' });

export const JOB_STATES = ['queued', 'delayed', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const FINISHED_STATES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);
export const JobStateSchema = Type.Union(JOB_STATES.map((s) => Type.Literal(s)));
export type JobState = (typeof JOB_STATES)[number];

/**
 * Ids, cursors, vendor names and job types as they appear in paths and queries. Every one pixq issues is
 * letters, digits, dots, dashes or underscores; limiting input to those keeps control characters (a NUL
 * byte is a 500 from PostgreSQL) and other junk out of the store queries.
 */
const IDENTIFIER = { minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' } as const;
export const Identifier = Type.String(IDENTIFIER);

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable machine-readable error code.' }),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details.' },
);
export type Problem = Static<typeof Problem>;

/**
 * An asset's path: `[A-Za-z0-9._/-]`, 1-255 characters, segments separated by `/`, none empty, none `.` or
 * `..`, no leading `/`. The one definition of the rule: the request schemas use it, and so does the server for
 * paths that arrive in a URL.
 */
export const ASSET_PATH = {
  maxLength: 255,
  pattern: '^(?!\\.\\.?(?:/|$))[A-Za-z0-9._-]+(?:/(?!\\.\\.?(?:/|$))[A-Za-z0-9._-]+)*$',
} as const;

/** Whether `path` is a valid asset path (see ASSET_PATH). */
export function isAssetPath(path: string): boolean {
  return path.length <= ASSET_PATH.maxLength && new RegExp(ASSET_PATH.pattern).test(path);
}

/** Job ids are ULIDs: a publish prefix must leave room for one. */
const JOB_ID_LENGTH = 26;

/** Whether `prefix` followed by a job id is a valid asset path (a prefix may end with `/`, or be empty). */
export function isAssetPrefix(prefix: string): boolean {
  return prefix === '' || isAssetPath(prefix + '0'.repeat(JOB_ID_LENGTH));
}

export const AssetPath = Type.String({
  minLength: 1,
  ...ASSET_PATH,
  description: 'An asset path: [A-Za-z0-9._/-], no empty, `.` or `..` segment, no leading `/`.',
});

/**
 * Where a succeeded job's first output is kept as an asset: `true` (the path is the job id), `{path}`, or
 * `{prefix}` (the prefix followed by the job id; what a bulk's shared fields use).
 */
export const PublishSetting = Type.Union([
  Type.Literal(true),
  Type.Object({ path: AssetPath }, { additionalProperties: false }),
  Type.Object(
    { prefix: Type.String({ maxLength: ASSET_PATH.maxLength - JOB_ID_LENGTH }) },
    { additionalProperties: false },
  ),
]);
export type PublishSetting = Static<typeof PublishSetting>;

export const JobInput = Type.Union([
  Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
  Type.Object({ uploadId: Identifier }, { additionalProperties: false }),
]);

/** Where a webhook goes: a job's own callback or an endpoint. */
export const WebhookUrl = Type.String({
  minLength: 1,
  maxLength: 2048,
  description: 'http(s) URL on a public address (PIXQ_URL_ALLOWLIST for private ones).',
});

export const TemplateName = Type.String({
  ...Identifier,
  description:
    "A template's name instead of `type`: its type and options, with the submission's `options` laid over them (top-level keys replaced whole).",
});

/** A submission names exactly one of `type` and `template` (the server refuses neither or both with a 400). */
export const JobSubmission = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    template: Type.Optional(TemplateName),
    input: Type.Optional(JobInput),
    options: Type.Optional(FreeObject),
    priority: Type.Optional(
      Type.Integer({
        minimum: JOB_LIMITS.priority.min,
        maximum: JOB_LIMITS.priority.max,
        description: 'Higher runs first.',
      }),
    ),
    maxAttempts: Type.Optional(
      Type.Integer({ minimum: JOB_LIMITS.maxAttempts.min, maximum: JOB_LIMITS.maxAttempts.max }),
    ),
    timeoutMs: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.timeoutMs.min, maximum: JOB_LIMITS.timeoutMs.max })),
    metadata: Type.Optional(FreeObject),
    webhookUrl: Type.Optional(WebhookUrl),
    publish: Type.Optional(PublishSetting),
  },
  { additionalProperties: false },
);
export type JobSubmission = Static<typeof JobSubmission>;

export const BulkSubmission = Type.Object(
  { jobs: Type.Array(JobSubmission, { minItems: 1 }) },
  { additionalProperties: false },
);

/**
 * A named, reusable job setting kept on the server: the vendor's own, or a built-in one (`builtIn`, which
 * nobody can change; its times are null).
 */
export const TemplateView = Type.Object({
  name: Type.String(),
  type: Type.String(),
  options: FreeObject,
  builtIn: Type.Boolean(),
  createdAt: Nullable(IsoTime),
  updatedAt: Nullable(IsoTime),
});
export type Template = Static<typeof TemplateView>;

export const TemplateList = Type.Object({ templates: Type.Array(TemplateView) });
export type TemplateList = Static<typeof TemplateList>;

export const TemplateCreate = Type.Object(
  { name: Identifier, type: Type.String({ minLength: 1, maxLength: 64 }), options: Type.Optional(FreeObject) },
  { additionalProperties: false },
);
export type TemplateCreate = Static<typeof TemplateCreate>;

export const TemplateUpdate = Type.Object(
  { type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), options: Type.Optional(FreeObject) },
  { additionalProperties: false, minProperties: 1, description: '`options` replaces the stored options whole.' },
);
export type TemplateUpdate = Static<typeof TemplateUpdate>;

export const BulkAccepted = Type.Object({
  batchId: Type.String(),
  jobIds: Type.Array(Type.String()),
  count: Type.Integer(),
});
export type BulkAccepted = Static<typeof BulkAccepted>;

/** Where a published output lives: its asset's path and version, and the permanent delivery URL of the original. */
export const AssetRef = Type.Object({
  path: Type.String(),
  version: Type.String(),
  url: Type.String({
    description: 'Permanent, cacheable delivery URL of the original bytes (signed, carries the version).',
  }),
});
export type AssetRef = Static<typeof AssetRef>;

export const JobOutputView = Type.Object({
  url: Type.String({ description: 'Signed download URL, valid for a short time.' }),
  thumbnailUrl: Type.String({ description: 'Signed URL of a thumbnail (320 px a side at most; format by Accept).' }),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
  asset: Type.Union([AssetRef, Type.Null()], {
    description: 'The asset that holds this output now, if it is published.',
  }),
});

const Progress = Type.Object({
  percent: Type.Number(),
  stage: Nullable(Type.String()),
  message: Nullable(Type.String()),
});
const JobErrorView = Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]);

export const JobView = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    state: JobStateSchema,
    priority: Type.Integer(),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    progress: Progress,
    createdAt: IsoTime,
    startedAt: Nullable(IsoTime),
    finishedAt: Nullable(IsoTime),
    batchId: Nullable(Type.String()),
    options: Type.Record(Type.String(), Type.Unknown(), {
      description: "The options as validated and stored (a template's resolved).",
    }),
    metadata: Type.Union([FreeObject, Type.Null()]),
    webhookUrl: Nullable(Type.String({ description: "Where the job's own callback goes when it finishes." })),
    template: Type.Union([
      Type.String({ description: 'The template the job was submitted by; its type and options are resolved.' }),
      Type.Null(),
    ]),
    result: Type.Union([FreeObject, Type.Null()]),
    outputs: Type.Array(JobOutputView),
    error: JobErrorView,
    publish: Type.Union(
      [
        Type.Object({
          path: Type.String(),
          error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()], {
            description: 'Why publishing was refused (the storage quota); the job succeeded all the same.',
          }),
        }),
        Type.Null(),
      ],
      { description: 'Where the first output is published when the job succeeds; null: not published.' },
    ),
  },
  { description: 'A job as callers see it.' },
);
export type Job = Static<typeof JobView>;

export const JobList = Type.Object({ jobs: Type.Array(JobView), nextCursor: Nullable(Type.String()) });
export type JobList = Static<typeof JobList>;

/**
 * What the metadata index holds, and so what a `metadata=key=value` filter can find: top-level string, number
 * and boolean values (compared as strings: `{"page": 3}` matches `page=3`), with keys of at most `maxKeyLength`
 * and values of at most `maxValueLength` characters. Longer values, nested objects, arrays and nulls are stored
 * with the job but not indexed, so no filter finds them. A filter names at most `maxFilters` pairs.
 */
export const METADATA_INDEX = { maxKeyLength: 64, maxValueLength: 256, maxFilters: 8 } as const;

const MetadataFilter = Type.Array(
  Type.String({
    minLength: 2,
    maxLength: METADATA_INDEX.maxKeyLength + 1 + METADATA_INDEX.maxValueLength,
    pattern: `^[^=]{1,${METADATA_INDEX.maxKeyLength}}=[\\s\\S]{0,${METADATA_INDEX.maxValueLength}}$`,
    description: 'key=value (the first "=" separates them)',
  }),
  {
    maxItems: METADATA_INDEX.maxFilters,
    description: 'Jobs whose top-level metadata has every one of these key=value pairs.',
  },
);

/** The fields that select jobs: the list, the count and the bulk actions take the same ones. */
const jobFilterFields = {
  state: Type.Optional(JobStateSchema),
  type: Type.Optional(Identifier),
  batchId: Type.Optional(Identifier),
  createdAfter: Type.Optional(Type.String({ format: 'date-time' })),
  createdBefore: Type.Optional(Type.String({ format: 'date-time' })),
  metadata: Type.Optional(MetadataFilter),
  vendorId: Type.Optional(
    Type.String({ ...IDENTIFIER, description: "Admin key only: one vendor's jobs (default: every vendor's)." }),
  ),
};

export const JobFilter = Type.Object(jobFilterFields, { additionalProperties: false });
export type JobFilter = Static<typeof JobFilter>;

export const JobListQuery = Type.Object(
  {
    ...jobFilterFields,
    cursor: Type.Optional(Identifier),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;

export const JobCount = Type.Object({ count: Type.Integer() });
export type JobCount = Static<typeof JobCount>;

/**
 * The most jobs one bulk cancel changes (a bulk retry: the server's bulk limit, `limits.maxBulkFiles` of
 * `GET /v1/vendors/me`); `more` in its answer says whether matching jobs remain.
 */
export const MAX_BULK_ACTION = 10_000;

export const BulkActionResult = Type.Object({
  matched: Type.Integer({
    description: `Jobs the filter selected in a state the action applies to (at most ${MAX_BULK_ACTION}; a retry at most the bulk limit).`,
  }),
  changed: Type.Integer({ description: 'Of those, the jobs cancelled (or flagged, when running) or queued again.' }),
  more: Type.Boolean({ description: 'More matching jobs remain: call again to act on the next ones.' }),
});
export type BulkActionResult = Static<typeof BulkActionResult>;

/** The longest span the per-minute series covers. */
export const MAX_SERIES_MINUTES = 1440;

export const StatsSeriesQuery = Type.Object(
  { minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_SERIES_MINUTES, default: 60 })) },
  { additionalProperties: false },
);
export type StatsSeriesQuery = Static<typeof StatsSeriesQuery>;

const MedianP95 = Type.Object({
  p50: Type.Union([Type.Number(), Type.Null()]),
  p95: Type.Union([Type.Number(), Type.Null()]),
});

export const StatsSeries = Type.Object({
  buckets: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time', description: 'Start of the minute.' }),
      finished: Type.Integer({ description: 'Jobs that finished in this minute (succeeded, failed or cancelled).' }),
      failed: Type.Integer(),
      waitMs: MedianP95,
      runMs: MedianP95,
    }),
    { description: 'One per minute, oldest first, the current minute last.' },
  ),
});
export type StatsSeries = Static<typeof StatsSeries>;

export const IdParams = Type.Object({ id: Identifier });

export const BatchView = Type.Object({
  id: Type.String(),
  total: Type.Integer(),
  counts: Type.Record(Type.String(), Type.Integer()),
  percent: Type.Number(),
});
export type Batch = Static<typeof BatchView>;

export const UploadView = Type.Object({
  id: Type.String(),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
  createdAt: IsoTime,
});
export type Upload = Static<typeof UploadView>;

/** One `data:` line of the event stream (`event: job`); `at` is epoch milliseconds. */
export const JobEventView = Type.Object({
  id: Type.Integer(),
  kind: Type.Union([Type.Literal('state'), Type.Literal('progress')]),
  jobId: Type.String(),
  vendorId: Type.String(),
  batchId: Nullable(Type.String()),
  type: Type.String(),
  state: JobStateSchema,
  attempts: Type.Integer(),
  progress: Progress,
  error: JobErrorView,
  at: Type.Number(),
});
export type JobEvent = Static<typeof JobEventView>;

/** The most stored events one page of GET /v1/jobs/:id/events holds. */
export const MAX_JOB_EVENTS_PAGE = 500;

export const JobEventsQuery = Type.Object(
  {
    afterId: Type.Optional(
      Type.Integer({ minimum: 0, default: 0, description: 'The last event id of the previous page (`nextAfterId`).' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_JOB_EVENTS_PAGE, default: 100 })),
  },
  { additionalProperties: false },
);
export type JobEventsQuery = Static<typeof JobEventsQuery>;

export const JobEventList = Type.Object({
  events: Type.Array(JobEventView, { description: 'Oldest first; events older than a day are gone.' }),
  nextAfterId: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Pass as afterId for the next page; null on the last.',
  }),
});
export type JobEventList = Static<typeof JobEventList>;

export const EventsQuery = Type.Object(
  {
    jobId: Type.Optional(Identifier),
    batchId: Type.Optional(Identifier),
    token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'An event token from POST /v1/events/tokens, for clients that cannot send headers (EventSource).',
      }),
    ),
    lastEventId: Type.Optional(
      Type.String({
        maxLength: 32,
        description: 'Same as the Last-Event-ID header, for a new EventSource resuming an old stream.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type EventsFilter = Pick<Static<typeof EventsQuery>, 'jobId' | 'batchId'>;

/** The most an event token may live: a leaked one is only good for reading events, and not for long. */
export const MAX_EVENT_TOKEN_TTL_S = 900;

export const EventTokenRequest = Type.Object(
  {
    jobId: Type.Optional(Identifier),
    batchId: Type.Optional(Identifier),
    ttlSeconds: Type.Optional(
      Type.Integer({ minimum: 10, maximum: MAX_EVENT_TOKEN_TTL_S, default: MAX_EVENT_TOKEN_TTL_S }),
    ),
  },
  { additionalProperties: false },
);
export type EventTokenRequest = Static<typeof EventTokenRequest>;

export const EventTokenView = Type.Object({
  token: Type.String(),
  expiresAt: IsoTime,
  jobId: Nullable(Type.String()),
  batchId: Nullable(Type.String()),
});
export type EventToken = Static<typeof EventTokenView>;

/** The request limits a client must stay within (part of GET /v1/vendors/me). */
export const RequestLimitsView = Type.Object({
  maxBulkFiles: Type.Integer({ description: 'Files or jobs per bulk request.' }),
  maxUploadBytes: Type.Integer({ description: 'Bytes per file.' }),
});
export type RequestLimits = Static<typeof RequestLimitsView>;

/** One webhook delivery: to an endpoint, or (endpointId null) to a job's own `webhookUrl`. */
export const WebhookDeliveryView = Type.Object({
  id: Type.String({ description: 'Sent as the webhook-id header; the same on every attempt.' }),
  endpointId: Nullable(Type.String()),
  eventType: Type.String(),
  jobId: Type.String(),
  batchId: Nullable(Type.String()),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(IsoTime),
  lastResponseStatus: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Nullable(Type.String()),
  lastAttemptAt: Nullable(IsoTime),
  createdAt: IsoTime,
});
export type WebhookDelivery = Static<typeof WebhookDeliveryView>;

export const WebhookDeliveryList = Type.Object({ deliveries: Type.Array(WebhookDeliveryView) });
export type WebhookDeliveryList = Static<typeof WebhookDeliveryList>;

/** The vendor's secret that signs its jobs' own callbacks (Standard Webhooks). */
export const CallbackSecretView = Type.Object({
  secret: Type.String({ description: 'whsec_… secret for verifying the webhook-signature header.' }),
  previousSecretUntil: Nullable(
    Type.String({
      format: 'date-time',
      description: 'After a rotation: until when the replaced secret signs alongside.',
    }),
  ),
  createdAt: IsoTime,
  updatedAt: IsoTime,
});
export type CallbackSecret = Static<typeof CallbackSecretView>;
const Rate = Type.Object(
  { limit: Type.Integer({ minimum: 1 }), windowMs: Type.Integer({ minimum: 1000 }) },
  { additionalProperties: false },
);
export const RateLimitsSetting = Type.Object(
  {
    requests: Type.Optional(Rate),
    image: Type.Optional(Rate),
    removeBackground: Type.Optional(Rate),
    bulk: Type.Optional(Rate),
    render: Type.Optional(Rate),
  },
  { additionalProperties: false },
);

export const VendorSettingsBody = Type.Object(
  {
    weight: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000 })),
    maxRunning: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    maxQueued: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
    rateLimits: Type.Optional(Type.Union([RateLimitsSetting, Type.Null()])),
    maxStorageBytes: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
        description: 'Bytes its uploads and assets may take; null: the server default (PIXQ_MAX_STORAGE_BYTES).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type VendorSettings = Static<typeof VendorSettingsBody>;

export const VendorCreateBody = Type.Composite(
  [Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }), VendorSettingsBody],
  { additionalProperties: false },
);
export type VendorCreate = Static<typeof VendorCreateBody>;

export const VendorView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  weight: Type.Number(),
  maxRunning: Type.Union([Type.Integer(), Type.Null()]),
  maxQueued: Type.Union([Type.Integer(), Type.Null()]),
  status: Type.String(),
  rateLimits: Type.Union([FreeObject, Type.Null()]),
  maxStorageBytes: Type.Union([Type.Integer(), Type.Null()], {
    description: 'Its own storage quota; null: the default.',
  }),
  storageBytes: Type.Integer({ description: 'Bytes its uploads and assets take now.' }),
  createdAt: IsoTime,
});
export type Vendor = Static<typeof VendorView>;

export const VendorList = Type.Object({ vendors: Type.Array(VendorView) });
export type VendorList = Static<typeof VendorList>;

export const VendorCreated = Type.Object({ vendor: VendorView, apiKey: Type.String({ description: 'Shown once.' }) });
export type VendorCreated = Static<typeof VendorCreated>;

export const ApiKeyView = Type.Object({
  id: Type.String(),
  prefix: Type.String(),
  createdAt: IsoTime,
  revokedAt: Nullable(IsoTime),
});
export type ApiKey = Static<typeof ApiKeyView>;

export const ApiKeyList = Type.Object({ keys: Type.Array(ApiKeyView) });
export type ApiKeyList = Static<typeof ApiKeyList>;

export const KeyIssued = Type.Object({ id: Type.String(), apiKey: Type.String({ description: 'Shown once.' }) });
export type KeyIssued = Static<typeof KeyIssued>;

export const JobTypeSettingsBody = Type.Object(
  {
    paused: Type.Optional(Type.Boolean()),
    maxRunning: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    rateLimit: Type.Optional(Type.Union([Rate, Type.Null()])),
  },
  { additionalProperties: false },
);
export type JobTypeSettings = Static<typeof JobTypeSettingsBody>;

export const JobTypeView = Type.Object({
  type: Type.String(),
  paused: Type.Boolean(),
  maxRunning: Type.Union([Type.Integer(), Type.Null()]),
  rateLimit: Type.Union([Type.Object({ limit: Type.Integer(), windowMs: Type.Integer() }), Type.Null()]),
});
export type JobType = Static<typeof JobTypeView>;

export const JobTypeList = Type.Object({
  types: Type.Optional(Type.Array(JobTypeView, { description: 'Types with stored settings (the admin key only).' })),
  available: Type.Array(Type.String(), { description: 'Every type this server offers.' }),
});
export type JobTypeList = Static<typeof JobTypeList>;

export const WorkerView = Type.Object({
  id: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  startedAt: IsoTime,
  heartbeatAt: IsoTime,
  running: Type.Integer(),
  slots: Type.Record(Type.String(), Type.Integer()),
  stopping: Type.Boolean(),
});
export type Worker = Static<typeof WorkerView>;

export const WorkerList = Type.Object({ workers: Type.Array(WorkerView) });
export type WorkerList = Static<typeof WorkerList>;

export const WhoAmI = Type.Union([
  Type.Object({ kind: Type.Literal('vendor'), vendor: Type.Object({ id: Type.String(), name: Type.String() }) }),
  Type.Object({ kind: Type.Literal('admin') }),
]);
export type WhoAmI = Static<typeof WhoAmI>;

/** A vendor's named, durable image. */
export const AssetView = Type.Object({
  path: Type.String(),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
  version: Type.String({ description: 'Changes exactly when the path gets new bytes.' }),
  jobId: Nullable(Type.String({ description: 'The job whose output it is (that job may be gone by now).' })),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  url: Type.String({ description: 'Permanent delivery URL of the original bytes.' }),
  thumbnailUrl: Type.String({ description: 'Delivery URL of a 320 px thumbnail (format by Accept).' }),
});
export type Asset = Static<typeof AssetView>;

export const MAX_ASSET_PAGE = 200;

export const AssetListQuery = Type.Object(
  {
    prefix: Type.Optional(
      Type.String({ maxLength: ASSET_PATH.maxLength, description: 'Only paths starting with this.' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_ASSET_PAGE, default: 50 })),
    cursor: Type.Optional(
      Type.String({ maxLength: ASSET_PATH.maxLength, description: 'nextCursor of the previous page.' }),
    ),
  },
  { additionalProperties: false },
);
export type AssetListQuery = Static<typeof AssetListQuery>;

export const AssetList = Type.Object({ assets: Type.Array(AssetView), nextCursor: Nullable(Type.String()) });
export type AssetList = Static<typeof AssetList>;

export const PublishRequest = Type.Object(
  { path: Type.Optional(AssetPath) },
  { additionalProperties: false, description: 'Default path: the one the job was submitted with, else the job id.' },
);

/** A vendor's delivery endpoint and signing pair, for imgproxy's URL builders. */
export const DeliveryView = Type.Object({
  endpoint: Type.String({ description: "The URL builders' endpoint: <base>/i/<vendor name>." }),
  key: Type.String({ description: 'Hex signing key.' }),
  salt: Type.String({ description: 'Hex salt.' }),
  public: Type.Boolean({ description: '`insecure` in place of a signature is accepted.' }),
  presetsOnly: Type.Boolean({ description: 'URLs may name presets only (and cachebuster and format).' }),
  previousValidUntil: Nullable(IsoTime),
});
export type Delivery = Static<typeof DeliveryView>;

export const DeliverySettingsBody = Type.Object(
  { public: Type.Optional(Type.Boolean()), presetsOnly: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

export const DeliveryPresets = Type.Object(
  {
    presets: Type.Record(
      Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
      Type.String({ minLength: 1, maxLength: 1024 }),
      {
        description:
          'Preset name to options in URL form, e.g. {"thumb": "rs:fill:300:300/f:webp"}; `default` applies to every URL.',
      },
    ),
  },
  { additionalProperties: false },
);
export type DeliveryPresets = Static<typeof DeliveryPresets>;
