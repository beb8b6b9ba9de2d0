import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import { JOB_LIMITS } from '../engine/limits.js';

/** RFC 3339 date-time (with a zone, as ajv-formats had it); TypeBox knows no formats until they are registered. */
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i;
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));

/** Request and response shapes; the same schemas validate requests and generate /openapi.json. */
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const FreeObject = Type.Record(Type.String(), Type.Unknown());
const IsoTime = Type.String({ format: 'date-time' });

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

/** Response entries for error statuses: RFC 9457 bodies, under the media type they are sent with. */
export function problemResponses(...statuses: number[]) {
  const entry = { description: 'Problem details (RFC 9457)', content: { 'application/problem+json': { schema: Problem } } };
  return Object.fromEntries(statuses.map((status) => [status, entry]));
}

export const JobInput = Type.Union([
  Type.Object({ url: Type.String({ minLength: 1, maxLength: 2048 }) }, { additionalProperties: false }),
  Type.Object({ uploadId: Identifier }, { additionalProperties: false }),
]);

export const JobSubmission = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 64 }),
    input: Type.Optional(JobInput),
    options: Type.Optional(FreeObject),
    priority: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.priority.min, maximum: JOB_LIMITS.priority.max, description: 'Higher runs first.' })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.maxAttempts.min, maximum: JOB_LIMITS.maxAttempts.max })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: JOB_LIMITS.timeoutMs.min, maximum: JOB_LIMITS.timeoutMs.max })),
    metadata: Type.Optional(FreeObject),
  },
  { additionalProperties: false },
);
export type JobSubmission = Static<typeof JobSubmission>;

export const BulkSubmission = Type.Object(
  { jobs: Type.Array(JobSubmission, { minItems: 1 }) },
  { additionalProperties: false },
);

export const JobOutputView = Type.Object({
  url: Type.String({ description: 'Signed download URL, valid for a short time.' }),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
});

export const JobView = Type.Object(
  {
    id: Type.String(),
    type: Type.String(),
    state: Type.Union(['queued', 'delayed', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
    priority: Type.Integer(),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    progress: Type.Object({ percent: Type.Number(), stage: Nullable(Type.String()), message: Nullable(Type.String()) }),
    createdAt: IsoTime,
    startedAt: Nullable(IsoTime),
    finishedAt: Nullable(IsoTime),
    batchId: Nullable(Type.String()),
    metadata: Type.Union([FreeObject, Type.Null()]),
    result: Type.Union([FreeObject, Type.Null()]),
    outputs: Type.Array(JobOutputView),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
  },
  { description: 'A job as callers see it.' },
);

export const JobList = Type.Object({ jobs: Type.Array(JobView), nextCursor: Nullable(Type.String()) });

export const JobListQuery = Type.Object(
  {
    state: Type.Optional(Type.Union(['queued', 'delayed', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => Type.Literal(s)))),
    type: Type.Optional(Identifier),
    batchId: Type.Optional(Identifier),
    createdAfter: Type.Optional(Type.String({ format: 'date-time' })),
    createdBefore: Type.Optional(Type.String({ format: 'date-time' })),
    cursor: Type.Optional(Identifier),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  },
  { additionalProperties: false },
);

export const IdParams = Type.Object({ id: Identifier });

export const BatchView = Type.Object({
  id: Type.String(),
  total: Type.Integer(),
  counts: Type.Record(Type.String(), Type.Integer()),
  percent: Type.Number(),
});

export const UploadView = Type.Object({
  id: Type.String(),
  contentType: Type.String(),
  width: Type.Integer(),
  height: Type.Integer(),
  bytes: Type.Integer(),
  createdAt: IsoTime,
});

const Rate = Type.Object({ limit: Type.Integer({ minimum: 1 }), windowMs: Type.Integer({ minimum: 1000 }) }, { additionalProperties: false });
export const RateLimitsSetting = Type.Object(
  {
    requests: Type.Optional(Rate),
    image: Type.Optional(Rate),
    removeBackground: Type.Optional(Rate),
    bulk: Type.Optional(Rate),
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
  },
  { additionalProperties: false },
);

export const VendorCreateBody = Type.Composite([
  Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }),
  VendorSettingsBody,
], { additionalProperties: false });

export const VendorView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  weight: Type.Number(),
  maxRunning: Type.Union([Type.Integer(), Type.Null()]),
  maxQueued: Type.Union([Type.Integer(), Type.Null()]),
  status: Type.String(),
  rateLimits: Type.Union([FreeObject, Type.Null()]),
  createdAt: IsoTime,
});

export const ApiKeyView = Type.Object({
  id: Type.String(),
  prefix: Type.String(),
  createdAt: IsoTime,
  revokedAt: Nullable(IsoTime),
});

export const JobTypeSettingsBody = Type.Object(
  {
    paused: Type.Optional(Type.Boolean()),
    maxRunning: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    rateLimit: Type.Optional(Type.Union([Rate, Type.Null()])),
  },
  { additionalProperties: false },
);
