/** @pixq/client: the pixq API from browsers and Node 20. */
export { PixqClient } from './client.js';
export type { BulkFiles, EventsOptions, FileInput, PixqClientOptions, RetryOptions, SubmitSpec, VendorStatus, WaitBatchOptions, WaitOptions } from './client.js';
export { PixqApiError } from './errors.js';
export { FINISHED_STATES, JOB_STATES } from './schemas.js';
export type { Batch, BulkAccepted, CallbackSecret, EventsFilter, EventToken, EventTokenRequest, Job, JobEvent, JobListQuery, JobState, JobSubmission, Problem, RequestLimits, Template, TemplateCreate, TemplateList, TemplateUpdate, Upload, WebhookDelivery, WebhookDeliveryList } from './schemas.js';
