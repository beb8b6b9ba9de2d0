import crypto from 'node:crypto';
import { notFound, PixqError } from '../errors.js';
import { newId } from '../ids.js';
import { selectJob } from '../store/sql/change-job-state.js';
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookCallbackSecretRow,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
  type Tx,
  type WebhookEventType,
} from '../store/index.js';
import {
  countEndpoints,
  deleteEndpoint,
  deleteFinishedDeliveries,
  insertBatchDeliveries,
  insertEndpoint,
  insertMissingCallbackSecrets,
  leaseDeliveries,
  recordDeliveryOutcome,
  requeueDelivery,
  rotateCallbackSecret,
  rotateEndpointSecret,
  selectCallbackSecrets,
  selectDeliveries,
  selectDelivery,
  selectEndpoint,
  selectEndpoints,
  selectEndpointsById,
  selectOldestDue,
  selectOldestDueOf,
  selectRecentlyFinishedBatches,
  selectVendorsWithPendingDeliveries,
  updateEndpoint,
} from '../store/sql/webhooks.js';
import { lockVendorById } from '../store/sql/vendors.js';
import type { EngineContext } from './context.js';

export type { WebhookEventType };
export { WEBHOOK_EVENT_TYPES };

export interface WebhookEndpoint {
  id: string;
  vendorId: string;
  url: string;
  description: string | null;
  events: WebhookEventType[];
  status: 'enabled' | 'disabled';
  disabledReason: string | null;
  failingSince: number | null;
  createdAt: number;
  updatedAt: number;
}

/** What the delivery worker needs of an endpoint or a job's own callback: where, and the secrets that sign. */
export interface DeliveryTarget {
  url: string;
  status: 'enabled' | 'disabled';
  /** The current secret first; during a rotation's overlap the previous one too. */
  secrets: string[];
}

/** A vendor's secret for its jobs' one-off callbacks. */
export interface CallbackSecret {
  secret: string;
  /** Until when the secret it replaced keeps signing alongside it; null when none does. */
  previousSecretUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface WebhookDelivery {
  id: string;
  /** Null for a job's own callback (to `url`). */
  endpointId: string | null;
  url: string | null;
  vendorId: string;
  eventType: WebhookEventType;
  jobId: string;
  batchId: string | null;
  state: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  createdAt: number;
  finishedAt: number | null;
}

/** The result of one HTTP attempt, as the delivery worker saw it. */
export type AttemptResult =
  | { kind: 'answered'; status: number; retryAfterMs?: number }
  | { kind: 'unreachable'; error: string }
  /** Never worth retrying: the target is refused (SSRF rules) or the endpoint is gone or disabled. */
  | { kind: 'refused'; error: string };

export interface WebhookSettings {
  /** Delay before each attempt: the first is normally 0 (at once). Standard Webhooks' schedule by default. */
  retryScheduleMs: number[];
  /** An endpoint whose deliveries have failed for this long without a success is disabled. */
  disableAfterMs: number;
  /** How long the previous secret keeps signing after a rotation. */
  rotationOverlapMs: number;
  /** Endpoints one vendor may have (each event fans out to every one of them, inside the job's transaction). */
  maxEndpointsPerVendor: number;
}

const SECRET_BYTES = 32;
const MAX_ERROR_LENGTH = 500;

export function newWebhookSecret(): string {
  return `whsec_${crypto.randomBytes(SECRET_BYTES).toString('base64')}`;
}

function toEndpoint(row: WebhookEndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    vendorId: row.vendor_id,
    url: row.url,
    description: row.description,
    events: JSON.parse(row.events) as WebhookEventType[],
    status: row.status,
    disabledReason: row.disabled_reason,
    failingSince: row.failing_since,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDelivery(row: WebhookDeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    url: row.url,
    vendorId: row.vendor_id,
    eventType: row.event_type,
    jobId: row.job_id,
    batchId: row.batch_id,
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: Number(row.next_attempt_at),
    lastStatus: row.last_status,
    lastError: row.last_error,
    lastAttemptAt: row.last_attempt_at === null ? null : Number(row.last_attempt_at),
    createdAt: Number(row.created_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

type SigningSecrets = Pick<WebhookEndpointRow, 'secret' | 'previous_secret' | 'previous_secret_until'>;

/** Whether a rotated-out secret still signs at `now`. */
function overlapping(row: SigningSecrets, now: number): boolean {
  return row.previous_secret !== null && Number(row.previous_secret_until) > now;
}

/** The secrets that sign at `now`: the current one first; during a rotation's overlap the previous one too. */
function signingSecrets(row: SigningSecrets, now: number): string[] {
  return overlapping(row, now) ? [row.secret, row.previous_secret!] : [row.secret];
}

function toCallbackSecret(row: WebhookCallbackSecretRow, now: number): CallbackSecret {
  return {
    secret: row.secret,
    previousSecretUntil: overlapping(row, now) ? Number(row.previous_secret_until) : null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/**
 * When the next attempt after `attempts` failed ones is due, or null when the schedule is spent. A
 * `Retry-After` the receiver sent is honoured when it asks for longer. Up to 10% jitter spreads retries of
 * many deliveries that failed together (one outage) instead of sending them all again at once.
 */
export function nextAttemptDelay(
  attempts: number,
  scheduleMs: number[],
  retryAfterMs = 0,
  random = Math.random,
): number | null {
  if (attempts >= scheduleMs.length) return null;
  const base = scheduleMs[attempts];
  return Math.max(retryAfterMs, Math.round(base * (1 + random() * 0.1)));
}

/**
 * Vendors' webhook endpoints, their callback secrets (for jobs' own `webhookUrl`), and the deliveries that the
 * engine writes with each event (see webhook-triggers.ts).
 */
export class WebhookService {
  /** The vendor whose delivery this process's last claim took first among equals: the next claim starts after it. */
  private lastServed = '';

  constructor(
    private readonly ctx: EngineContext,
    private readonly settings: WebhookSettings,
  ) {}

  /** Registers an endpoint; the answer holds its secret, which is never shown again. */
  async create(
    vendorId: string,
    spec: { url: string; events?: WebhookEventType[]; description?: string },
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const now = this.ctx.now();
    const secret = newWebhookSecret();
    const row: WebhookEndpointRow = {
      id: newId(),
      vendor_id: vendorId,
      url: spec.url,
      description: spec.description ?? null,
      events: JSON.stringify(spec.events ?? WEBHOOK_EVENT_TYPES.filter((t) => t !== 'job.progress')),
      secret,
      previous_secret: null,
      previous_secret_until: null,
      status: 'enabled',
      disabled_reason: null,
      failing_since: null,
      created_at: now,
      updated_at: now,
    };
    const max = this.settings.maxEndpointsPerVendor;
    await this.ctx.write(async (tx) => {
      // Under the vendor's lock (PostgreSQL), so that registrations at once cannot together pass the limit.
      if (!(await lockVendorById(tx, this.ctx.store.dialect, vendorId))) throw notFound('vendor');
      if ((await countEndpoints(tx, vendorId)) >= max) {
        throw new PixqError(
          'too_many_webhooks',
          `a vendor may have at most ${max} webhook endpoints; delete one first, or subscribe one endpoint to more events`,
          { status: 409, details: { limit: max } },
        );
      }
      await insertEndpoint(tx, row);
    });
    return { endpoint: toEndpoint(row), secret };
  }

  async get(id: string, vendorId: string): Promise<WebhookEndpoint> {
    return toEndpoint(await this.row(id, vendorId));
  }

  async list(vendorId: string): Promise<WebhookEndpoint[]> {
    return (await this.ctx.read((db) => selectEndpoints(db, vendorId))).map(toEndpoint);
  }

  /** Changes an endpoint; enabling it again clears why it was disabled and its failure streak. */
  async update(
    id: string,
    vendorId: string,
    changes: {
      url?: string;
      events?: WebhookEventType[];
      description?: string | null;
      status?: 'enabled' | 'disabled';
    },
  ): Promise<WebhookEndpoint> {
    const set: Partial<WebhookEndpointRow> = { updated_at: this.ctx.now() };
    if (changes.url !== undefined) set.url = changes.url;
    if (changes.events !== undefined) set.events = JSON.stringify(changes.events);
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.status !== undefined) {
      set.status = changes.status;
      set.disabled_reason = changes.status === 'disabled' ? 'disabled by the vendor' : null;
      if (changes.status === 'enabled') set.failing_since = null;
    }
    const updated = await this.ctx.write((tx) => updateEndpoint(tx, id, vendorId, set));
    if (!updated) throw notFound('webhook endpoint');
    return this.get(id, vendorId);
  }

  async delete(id: string, vendorId: string): Promise<void> {
    if (!(await this.ctx.write((tx) => deleteEndpoint(tx, id, vendorId)))) throw notFound('webhook endpoint');
  }

  /** A new secret; the old one keeps signing alongside it for the overlap, so receivers can switch over. */
  async rotateSecret(id: string, vendorId: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const now = this.ctx.now();
    const secret = newWebhookSecret();
    const rotated = await this.ctx.write((tx) =>
      rotateEndpointSecret(tx, id, vendorId, secret, now + this.settings.rotationOverlapMs, now),
    );
    if (!rotated) throw notFound('webhook endpoint');
    return { endpoint: await this.get(id, vendorId), secret };
  }

  /** The vendor's secret for signing its jobs' own callbacks, created on first use. */
  async callbackSecret(vendorId: string): Promise<CallbackSecret> {
    const now = this.ctx.now();
    const [row] = await this.ctx.write((tx) => this.callbackSecretRows(tx, [vendorId], now));
    return toCallbackSecret(row, now);
  }

  /** A new callback secret; the old one keeps signing alongside it for the overlap, as for an endpoint. */
  async rotateCallbackSecret(vendorId: string): Promise<CallbackSecret> {
    const now = this.ctx.now();
    const [row] = await this.ctx.write(async (tx) => {
      await insertMissingCallbackSecrets(tx, [vendorId], newWebhookSecret, now);
      await rotateCallbackSecret(tx, vendorId, newWebhookSecret(), now + this.settings.rotationOverlapMs, now);
      return selectCallbackSecrets(tx, [vendorId]);
    });
    return toCallbackSecret(row, now);
  }

  /** The latest deliveries about one of the vendor's jobs; another vendor's job is not found. */
  async jobDeliveries(jobId: string, vendorId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.ctx.read(async (db) => {
      if (!(await selectJob(db, jobId, vendorId))) throw notFound('job');
      return (await selectDeliveries(db, vendorId, { jobId }, limit)).map(toDelivery);
    });
  }

  async deliveries(id: string, vendorId: string, limit: number): Promise<WebhookDelivery[]> {
    await this.row(id, vendorId);
    return (await this.ctx.read((db) => selectDeliveries(db, vendorId, { endpointId: id }, limit))).map(toDelivery);
  }

  /** Sends a delivery again from the start of the schedule, whatever its state. */
  async replay(id: string, deliveryId: string, vendorId: string): Promise<WebhookDelivery> {
    const found = await this.ctx.read((db) => selectDelivery(db, deliveryId, id, vendorId));
    if (!found) throw notFound('webhook delivery');
    await this.ctx.write((tx) => requeueDelivery(tx, deliveryId, this.ctx.now()));
    return toDelivery((await this.ctx.read((db) => selectDelivery(db, deliveryId, id, vendorId)))!);
  }

  /**
   * Leases due deliveries to a delivery worker, with their targets: the endpoint's (undefined once it was
   * deleted), or for a job's own callback its URL and the vendor's callback secrets.
   */
  async claimDue(
    owner: string,
    limit: number,
    leaseMs: number,
  ): Promise<{ delivery: WebhookDelivery; target: DeliveryTarget | undefined }[]> {
    const now = this.ctx.now();
    const { rows, callbackSecrets } = await this.ctx.write(async (tx) => {
      const rows = await leaseDeliveries(tx, await this.fairlyDue(tx, now, limit), owner, now, now + leaseMs);
      const callbackVendors = [...new Set(rows.filter((r) => r.endpoint_id === null).map((r) => r.vendor_id))];
      return { rows, callbackSecrets: await this.callbackSecretRows(tx, callbackVendors, now) };
    });
    if (rows.length === 0) return [];
    const endpointIds = [...new Set(rows.flatMap((r) => (r.endpoint_id === null ? [] : [r.endpoint_id])))];
    const endpoints = new Map(
      (await this.ctx.read((db) => selectEndpointsById(db, endpointIds))).map((e) => [e.id, e]),
    );
    const secrets = new Map(callbackSecrets.map((c) => [c.vendor_id, signingSecrets(c, now)]));
    return rows.map((row) => {
      const endpoint = row.endpoint_id === null ? undefined : endpoints.get(row.endpoint_id);
      const target: DeliveryTarget | undefined =
        row.endpoint_id === null
          ? { url: row.url!, status: 'enabled', secrets: secrets.get(row.vendor_id)! }
          : endpoint && { url: endpoint.url, status: endpoint.status, secrets: signingSecrets(endpoint, now) };
      return { delivery: toDelivery(row), target };
    });
  }

  /**
   * Up to `limit` due deliveries, fair across vendors: first the oldest due delivery of each vendor that has one,
   * the vendors taken in turn from after the one this process served last, then the oldest of the rest. So every
   * vendor with a due delivery has one in a claim before any has two, and one vendor's backlog delays another's
   * due delivery by at most one claim's batch, however old the backlog. One index probe per vendor with pending
   * deliveries; none at all when nothing is pending.
   */
  private async fairlyDue(tx: Tx, now: number, limit: number): Promise<string[]> {
    const dialect = this.ctx.store.dialect;
    const vendors = await selectVendorsWithPendingDeliveries(tx);
    if (vendors.length === 0) return [];
    const next = vendors.findIndex((v) => v > this.lastServed);
    const turn = next <= 0 ? vendors : [...vendors.slice(next), ...vendors.slice(0, next)];
    const ids: string[] = [];
    for (const vendorId of turn) {
      if (ids.length >= limit) break;
      const id = await selectOldestDueOf(tx, dialect, vendorId, now);
      if (id === undefined) continue;
      ids.push(id);
      this.lastServed = vendorId;
    }
    if (ids.length < limit) ids.push(...(await selectOldestDue(tx, dialect, now, limit - ids.length, ids)));
    return ids;
  }

  /**
   * Records an attempt: 2xx succeeds; 410 disables the endpoint (a job's own callback just stops, having no
   * endpoint); anything else is retried on the schedule (honouring `Retry-After`) until it is spent. An
   * endpoint failing for longer than `disableAfterMs` without a success is disabled, with the reason the
   * vendor sees.
   */
  async recordAttempt(delivery: WebhookDelivery, owner: string, result: AttemptResult): Promise<void> {
    const now = this.ctx.now();
    const status = result.kind === 'answered' ? result.status : null;
    const error = result.kind === 'answered' ? null : result.error.slice(0, MAX_ERROR_LENGTH);
    const succeeded = status !== null && status >= 200 && status < 300;
    const gone = status === 410;
    const delay =
      succeeded || gone || result.kind === 'refused'
        ? null
        : nextAttemptDelay(
            delivery.attempts,
            this.settings.retryScheduleMs,
            result.kind === 'answered' ? result.retryAfterMs : 0,
          );
    const state = succeeded ? 'succeeded' : delay === null ? 'failed' : 'pending';
    await this.ctx.write(async (tx) => {
      const recorded = await recordDeliveryOutcome(
        tx,
        delivery.id,
        owner,
        { state, nextAttemptAt: now + (delay ?? 0), status, error },
        now,
      );
      if (!recorded || delivery.endpointId === null) return;
      const endpoint = await selectEndpoint(tx, delivery.endpointId, delivery.vendorId);
      if (!endpoint) return;
      if (succeeded) {
        if (endpoint.failing_since !== null)
          await updateEndpoint(tx, endpoint.id, endpoint.vendor_id, { failing_since: null, updated_at: now });
        return;
      }
      const failingSince = endpoint.failing_since ?? now;
      const reason = gone
        ? 'the endpoint answered 410 Gone'
        : now - failingSince >= this.settings.disableAfterMs
          ? `deliveries failed for ${Math.round((now - failingSince) / 3_600_000)} h without a success (last: ${status ?? error})`
          : null;
      await updateEndpoint(tx, endpoint.id, endpoint.vendor_id, {
        failing_since: failingSince,
        updated_at: now,
        ...(reason && endpoint.status === 'enabled' ? { status: 'disabled' as const, disabled_reason: reason } : {}),
      });
    });
  }

  /**
   * `batch.completed` for batches whose last jobs finished in transactions that could not see each other
   * (PostgreSQL); the in-transaction fan-out covers every other case. Safe to run from every process.
   */
  async sweepCompletedBatches(sinceMs: number): Promise<void> {
    const now = this.ctx.now();
    const batches = await this.ctx.read((db) => selectRecentlyFinishedBatches(db, now - sinceMs));
    const byVendor = new Map<string, string[]>();
    for (const b of batches) byVendor.set(b.vendor_id, [...(byVendor.get(b.vendor_id) ?? []), b.batch_id]);
    for (const [vendorId, ids] of byVendor) await this.ctx.write((tx) => insertBatchDeliveries(tx, vendorId, ids, now));
  }

  /** Deletes deliveries that ended before `before`. */
  prune(before: number): Promise<number> {
    return this.ctx.write((tx) => deleteFinishedDeliveries(tx, before));
  }

  private async row(id: string, vendorId: string): Promise<WebhookEndpointRow> {
    const row = await this.ctx.read((db) => selectEndpoint(db, id, vendorId));
    if (!row) throw notFound('webhook endpoint');
    return row;
  }

  /** The callback secrets of `vendorIds`, creating those that do not exist yet. */
  private async callbackSecretRows(tx: Tx, vendorIds: string[], now: number): Promise<WebhookCallbackSecretRow[]> {
    await insertMissingCallbackSecrets(tx, vendorIds, newWebhookSecret, now);
    return selectCallbackSecrets(tx, vendorIds);
  }
}
