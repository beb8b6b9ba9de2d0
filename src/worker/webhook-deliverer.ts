import os from 'node:os';
import type { Logger } from 'pino';
import { request } from 'undici';
import { Webhook } from 'standardwebhooks';
import type { AttemptResult, DeliveryTarget, Engine, JobOutput, WebhookDelivery } from '../engine/index.js';
import { PixqError } from '../errors.js';
import { assetRefsOf } from '../delivery/urls.js';
import { newId } from '../ids.js';
import { assertLiteralAllowed, discard, guardedAgent, parseAllowlist, parseUrl } from '../intake/index.js';

export interface WebhookDelivererOptions {
  engine: Engine;
  log: Logger;
  pollMs: number;
  timeoutMs: number;
  concurrency: number;
  /** PIXQ_URL_ALLOWLIST: private hosts a webhook may reach. */
  allowlist: readonly string[];
  /** An absolute download URL for a job's output, signed for as long as a receiver may need it. */
  outputUrl: (vendorId: string, output: JobOutput) => string;
  /** The base of delivery URLs in payloads (PIXQ_DELIVERY_URL, else PIXQ_PUBLIC_URL; '' for relative). */
  deliveryBase: string;
}

/** A payload larger than this drops the job's result and metadata, which the receiver can read from the API. */
const MAX_PAYLOAD_BYTES = 20 * 1024;
// A lease outlives the request's timeout (twice over), so a delivery in flight is not sent again by another
// worker, while one whose worker died comes back soon.
const LEASE_FACTOR = 2;

/**
 * Sends due webhook deliveries, driven from the store: every worker process runs one; each leases rows from
 * `webhook_deliveries` (written in the same transaction as the events they report), posts them signed
 * with the Standard Webhooks scheme, and records the outcome. A process that dies mid-delivery loses
 * nothing: the lease expires and another process sends it again (receivers dedupe by `webhook-id`).
 */
export function startWebhookDeliverer(opts: WebhookDelivererOptions): () => Promise<void> {
  const owner = `${os.hostname()}:${process.pid}:${newId()}`;
  const agent = guardedAgent(parseAllowlist(opts.allowlist), opts.timeoutMs);
  const inFlight = new Set<Promise<void>>();
  let claiming = false;
  let stopped = false;

  const fill = async () => {
    if (claiming || stopped) return;
    claiming = true;
    try {
      const free = opts.concurrency - inFlight.size;
      if (free <= 0) return;
      const due = await opts.engine.webhooks.claimDue(owner, free, opts.timeoutMs * LEASE_FACTOR);
      for (const { delivery, target } of due) {
        const sending = deliver(opts, agent, owner, delivery, target).finally(() => {
          inFlight.delete(sending);
          void fill();
        });
        inFlight.add(sending);
      }
    } catch (err) {
      opts.log.error({ err }, 'claiming webhook deliveries failed');
    } finally {
      claiming = false;
    }
  };
  const timer = setInterval(() => void fill(), opts.pollMs);
  timer.unref();
  // In this process, a finished job's deliveries are picked up at once instead of at the next poll.
  const unsubscribe = opts.engine.bus.onEvent((event) => {
    if (event.kind === 'state' && ['succeeded', 'failed', 'cancelled'].includes(event.state))
      setImmediate(() => void fill());
  });
  const sweep = setInterval(() => {
    opts.engine.webhooks
      .sweepCompletedBatches(opts.pollMs * 10)
      .catch((err) => opts.log.error({ err }, 'batch webhook sweep failed'));
  }, opts.pollMs * 5);
  sweep.unref();
  void fill();
  return async () => {
    stopped = true;
    clearInterval(timer);
    clearInterval(sweep);
    unsubscribe();
    await Promise.allSettled([...inFlight]);
    await agent.close();
  };
}

async function deliver(
  opts: WebhookDelivererOptions,
  agent: ReturnType<typeof guardedAgent>,
  owner: string,
  delivery: WebhookDelivery,
  target: DeliveryTarget | undefined,
): Promise<void> {
  let result: AttemptResult;
  if (!target || target.status !== 'enabled') {
    result = { kind: 'refused', error: target ? 'the endpoint is disabled' : 'the endpoint was deleted' };
  } else {
    try {
      result = await post(opts, agent, delivery, target, await payloadOf(opts, delivery));
    } catch (err) {
      result = outcomeOf(err);
    }
  }
  if (result.kind !== 'answered' || result.status >= 300) {
    opts.log.warn({ delivery: delivery.id, attempt: delivery.attempts, result }, 'webhook delivery failed');
  }
  await opts.engine.webhooks
    .recordAttempt(delivery, owner, result)
    .catch((err) =>
      opts.log.error(
        { err, delivery: delivery.id },
        'recording a webhook delivery failed; it is sent again after its lease',
      ),
    );
}

async function post(
  opts: WebhookDelivererOptions,
  agent: ReturnType<typeof guardedAgent>,
  delivery: WebhookDelivery,
  target: DeliveryTarget,
  body: string,
): Promise<AttemptResult> {
  const url = parseUrl(target.url);
  assertLiteralAllowed(url, parseAllowlist(opts.allowlist));
  const sentAt = new Date();
  const signature = target.secrets.map((secret) => new Webhook(secret).sign(delivery.id, sentAt, body)).join(' ');
  const response = await request(url, {
    dispatcher: agent,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'pixq-webhooks',
      'webhook-id': delivery.id,
      'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
      'webhook-signature': signature,
    },
    body,
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  discard(response);
  const retryAfter = response.headers['retry-after'];
  return {
    kind: 'answered',
    status: response.statusCode,
    retryAfterMs: retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
  };
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from now. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** A refused target (SSRF rules, found at any depth of undici's wrapping) or a job gone by retention ends it. */
function outcomeOf(err: unknown): AttemptResult {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PixqError && e.code === 'url_not_allowed') return { kind: 'refused', error: e.message };
    if (e instanceof PixqError && e.code === 'not_found') return { kind: 'refused', error: e.message };
  }
  return { kind: 'unreachable', error: err instanceof Error ? err.message : String(err) };
}

/**
 * The body of a delivery: Standard Webhooks' `{type, timestamp, data}`, with the job (or batch) as it is
 * now: ids, state, error, fresh output URLs, metadata and the result while the whole stays under 20 KB.
 */
async function payloadOf(opts: WebhookDelivererOptions, delivery: WebhookDelivery): Promise<string> {
  const envelope = (data: Record<string, unknown>) =>
    JSON.stringify({ type: delivery.eventType, timestamp: new Date().toISOString(), data });
  if (delivery.eventType === 'batch.completed') {
    const batch = await opts.engine.jobs.batch(delivery.batchId!, delivery.vendorId);
    return envelope({ batchId: batch.id, total: batch.total, counts: batch.counts, percent: batch.percent });
  }
  const job = await opts.engine.jobs.get(delivery.jobId, delivery.vendorId);
  const assets = await assetRefsOf(opts.engine, opts.deliveryBase, [job]);
  const data: Record<string, unknown> = {
    jobId: job.id,
    type: job.type,
    state: job.state,
    attempts: job.attempts,
    batchId: job.batchId,
    ...(delivery.eventType === 'job.progress' ? { progress: job.progress } : {}),
    error: job.error && { code: job.error.code, message: job.error.message },
    outputs: job.outputs.map((o) => ({
      url: opts.outputUrl(job.vendorId, o),
      contentType: o.contentType,
      width: o.width,
      height: o.height,
      bytes: o.bytes,
      asset: assets(job, o),
    })),
    createdAt: new Date(job.createdAt).toISOString(),
    finishedAt: job.finishedAt === null ? null : new Date(job.finishedAt).toISOString(),
    metadata: job.metadata,
    result: job.result,
  };
  const full = envelope(data);
  if (Buffer.byteLength(full) <= MAX_PAYLOAD_BYTES) return full;
  return envelope({ ...data, metadata: undefined, result: undefined, truncated: true });
}
