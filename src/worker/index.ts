export { Worker, type WorkerOptions } from './worker.js';
export { startMaintainer } from './maintainer.js';
export { inputLoader } from './load-input.js';
export { startWebhookDeliverer, type WebhookDelivererOptions } from './webhook-deliverer.js';
