import type { Dialect, Tx, WebhookEventType } from '../store/index.js';
import { FINISHED_STATES } from '../store/index.js';
import { insertBatchDeliveries, insertEventDeliveries, type WebhookTrigger } from '../store/sql/webhooks.js';
import type { JobEvent } from './types.js';

/** The webhook event a job event is, if any: final states and progress reports are; other states are not. */
export function webhookEventType(event: JobEvent): WebhookEventType | undefined {
  if (event.kind === 'progress') return 'job.progress';
  if (event.state === 'succeeded') return 'job.succeeded';
  if (event.state === 'failed') return 'job.failed';
  if (event.state === 'cancelled') return 'job.cancelled';
  return undefined;
}

/**
 * Writes the webhook deliveries a transaction's events call for, inside that transaction (see
 * store/sql/webhooks.ts): one delivery per subscribed endpoint and event, and `batch.completed` once a
 * batch has no job left to run.
 */
export async function fanOutWebhooks(tx: Tx, dialect: Dialect, events: JobEvent[], now: number): Promise<void> {
  const triggers: WebhookTrigger[] = [];
  for (const event of events) {
    const eventType = webhookEventType(event);
    if (!eventType) continue;
    const finished = event.kind === 'state' && FINISHED_STATES.includes(event.state);
    triggers.push({
      eventId: event.id,
      vendorId: event.vendorId,
      jobId: event.jobId,
      batchId: event.batchId,
      eventType,
      finished,
    });
  }
  await insertEventDeliveries(tx, dialect, triggers, now);
  const batchesByVendor = new Map<string, Set<string>>();
  for (const t of triggers) {
    if (!t.finished || t.batchId === null) continue;
    const batches = batchesByVendor.get(t.vendorId) ?? new Set<string>();
    batches.add(t.batchId);
    batchesByVendor.set(t.vendorId, batches);
  }
  for (const [vendorId, batches] of batchesByVendor) await insertBatchDeliveries(tx, vendorId, [...batches], now);
}
