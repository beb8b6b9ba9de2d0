import { FormatRegistry } from '@sinclair/typebox';

/** RFC 3339 date-time (with a zone, as ajv-formats had it); TypeBox knows no formats until they are registered. */
const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i;
if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));

/**
 * Request and response shapes; the same schemas validate requests and generate /openapi.json. The wire shapes
 * a client sees live in @pixq/client's schemas (no server dependency), so the SDK's types are these schemas.
 */
export {
  AssetList,
  AssetListQuery,
  AssetRef,
  AssetView,
  DeliveryPresets,
  DeliverySettingsBody,
  DeliveryView,
  PublishRequest,
  ApiKeyList,
  ApiKeyView,
  BatchView,
  BulkAccepted,
  BulkActionResult,
  BulkSubmission,
  CallbackSecretView,
  EventsQuery,
  EventTokenRequest,
  EventTokenView,
  Identifier,
  IdParams,
  JobCount,
  JobFilter,
  JobInput,
  JobList,
  JobListQuery,
  JobEventList,
  JobEventsQuery,
  JobOutputView,
  JobSubmission,
  JobTypeList,
  JobTypeSettingsBody,
  JobTypeView,
  JobView,
  KeyIssued,
  Problem,
  RateLimitsSetting,
  RequestLimitsView,
  StatsSeries,
  StatsSeriesQuery,
  TemplateCreate,
  TemplateList,
  TemplateName,
  TemplateUpdate,
  TemplateView,
  UploadView,
  VendorCreateBody,
  VendorCreated,
  VendorList,
  VendorSettingsBody,
  VendorView,
  WebhookDeliveryList,
  WebhookDeliveryView,
  WebhookUrl,
  WhoAmI,
  WorkerList,
} from '@pixq/client/schemas';
import { Problem } from '@pixq/client/schemas';

/** Response entries for error statuses: RFC 9457 bodies, under the media type they are sent with. */
export function problemResponses(...statuses: number[]) {
  const entry = {
    description: 'Problem details (RFC 9457)',
    content: { 'application/problem+json': { schema: Problem } },
  };
  return Object.fromEntries(statuses.map((status) => [status, entry]));
}
