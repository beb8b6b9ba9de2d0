/** @pixq/client: the pixq API from browsers and Node 20. */
export { PixqClient } from './client.js';
export type { BulkFiles, EventsOptions, FileInput, PixqClientOptions, RetryOptions, SubmitSpec, VendorStatus, WaitBatchOptions, WaitOptions } from './client.js';
export { PixqApiError } from './errors.js';
export { FINISHED_STATES, JOB_STATES, MAX_BULK_ACTION, MAX_JOB_EVENTS_PAGE, MAX_SERIES_MINUTES, METADATA_INDEX } from './schemas.js';
export type {
  ApiKey, ApiKeyList, Batch, BulkAccepted, BulkActionResult, CallbackSecret, EventsFilter, EventToken, EventTokenRequest, Job, JobCount,
  JobEvent, JobEventList, JobEventsQuery, JobFilter, JobList, JobListQuery, JobState, JobSubmission, JobType, JobTypeList, JobTypeSettings, KeyIssued, Problem,
  RequestLimits, StatsSeries, StatsSeriesQuery, Template, TemplateCreate, TemplateList, TemplateUpdate, Upload, Vendor, VendorCreate,
  VendorCreated, VendorList, VendorSettings, WebhookDelivery, WebhookDeliveryList, WhoAmI, Worker, WorkerList,
} from './schemas.js';
