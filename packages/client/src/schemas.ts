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
export const Identifier = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$' });

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
  description: "A template's name instead of `type`: its type and options, with the submission's `options` laid over them (top-level keys replaced whole).",
});

/** A submission names exactly one of `type` and `template` (the server refuses neither or both with a 400). */
export const JobSubmission = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    template: Type.Optional(TemplateName),
    input: Type.Optional(JobInput),
    options: Type.Optional(FreeObject),
    priority: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.priority.min, maximum: JOB_LIMITS.priority.max, description: 'Higher runs first.' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.maxAttempts.min, maximum: JOB_LIMITS.maxAttempts.max })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.timeoutMs.min, maximum: JOB_LIMITS.timeoutMs.max })),
    metadata: Type.Optional(FreeObject),
    webhookUrl: Type.Optional(WebhookUrl),
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

export const BulkAccepted = Type.Object({ batchId: Type.String(), jobIds: Type.Array(Type.String()), count: Type.Integer() });
export type BulkAccepted = Static<typeof BulkAccepted>;

export const JobOutputView = Type.Object({
  url: Type.String({ description: 'Signed download URL, valid for a short time.' }),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
});

const Progress = Type.Object({ percent: Type.Number(), stage: Nullable(Type.String()), message: Nullable(Type.String()) });
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
    metadata: Type.Union([FreeObject, Type.Null()]),
    webhookUrl: Nullable(Type.String({ description: "Where the job's own callback goes when it finishes." })),
    template: Type.Union([Type.String({ description: 'The template the job was submitted by; its type and options are resolved.' }), Type.Null()]),
    result: Type.Union([FreeObject, Type.Null()]),
    outputs: Type.Array(JobOutputView),
    error: JobErrorView,
  },
  { description: 'A job as callers see it.' },
);
export type Job = Static<typeof JobView>;

export const JobList = Type.Object({ jobs: Type.Array(JobView), nextCursor: Nullable(Type.String()) });
export type JobList = Static<typeof JobList>;

export const JobListQuery = Type.Object(
  {
    state: Type.Optional(JobStateSchema),
    type: Type.Optional(Identifier),
    batchId: Type.Optional(Identifier),
    createdAfter: Type.Optional(Type.String({ format: 'date-time' })),
    createdBefore: Type.Optional(Type.String({ format: 'date-time' })),
    cursor: Type.Optional(Identifier),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuery>;

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

export const EventsQuery = Type.Object(
  {
    jobId: Type.Optional(Identifier),
    batchId: Type.Optional(Identifier),
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'An event token from POST /v1/events/tokens, for clients that cannot send headers (EventSource).' })),
    lastEventId: Type.Optional(Type.String({ maxLength: 32, description: 'Same as the Last-Event-ID header, for a new EventSource resuming an old stream.' })),
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
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: MAX_EVENT_TOKEN_TTL_S, default: MAX_EVENT_TOKEN_TTL_S })),
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
  previousSecretUntil: Nullable(Type.String({ format: 'date-time', description: 'After a rotation: until when the replaced secret signs alongside.' })),
  createdAt: IsoTime,
  updatedAt: IsoTime,
});
export type CallbackSecret = Static<typeof CallbackSecretView>;
