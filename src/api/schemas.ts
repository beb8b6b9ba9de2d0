import { FormatRegistry, Type } from '@sinclair/typebox';

/** RFC 3339 date-time (with a zone, as ajv-formats had it); TypeBox knows no formats until they are registered. */
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i;
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));

/**
 * Request and response shapes; the same schemas validate requests and generate /openapi.json. The wire shapes
 * a client sees live in @pixq/client's schemas (no server dependency), so the SDK's types are these schemas.
 */
export {
  BatchView, BulkAccepted, BulkSubmission, CallbackSecretView, EventsQuery, EventTokenRequest, EventTokenView,
  Identifier, IdParams, JobInput, JobList, JobListQuery, JobOutputView, JobSubmission, JobView, Problem,
  RequestLimitsView, TemplateCreate, TemplateList, TemplateName, TemplateUpdate, TemplateView, UploadView,
  WebhookDeliveryList, WebhookDeliveryView, WebhookUrl,
} from '@pixq/client/schemas';
import { Problem } from '@pixq/client/schemas';
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const FreeObject = Type.Record(Type.String(), Type.Unknown());
const IsoTime = Type.String({ format: 'date-time' });

/** Response entries for error statuses: RFC 9457 bodies, under the media type they are sent with. */
export function problemResponses(...statuses: number[]) {
  const entry = { description: 'Problem details (RFC 9457)', content: { 'application/problem+json': { schema: Problem } } };
  return Object.fromEntries(statuses.map((status) => [status, entry]));
}

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
