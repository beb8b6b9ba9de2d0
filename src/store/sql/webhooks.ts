import { CompiledQuery, sql } from 'kysely';
import type { Dialect } from '../connect.js';
import type { WebhookCallbackSecretRow, WebhookDeliveryRow, WebhookEndpointRow, WebhookEventType } from '../schema.js';
import type { Tx } from '../transaction.js';

/** One stored event that a webhook may report. */
export interface WebhookTrigger {
  eventId: number;
  vendorId: string;
  jobId: string;
  batchId: string | null;
  eventType: WebhookEventType;
  /** Whether the job reached a final state: the batch may be complete. */
  finished: boolean;
}

const placeholder = (dialect: Dialect, n: number) => (dialect === 'postgres' ? `$${n}` : '?');

/** The events that end a job: what a job's own callback reports. */
export const FINAL_EVENT_TYPES: readonly WebhookEventType[] = ['job.succeeded', 'job.failed', 'job.cancelled'];

/**
 * Fans a transaction's events out to the endpoints that subscribed to them, and a job's final event to the
 * job's own `webhook_url`, as pending deliveries written in that same transaction: a committed state change
 * always has its notifications, and a rolled-back one none. Hand-written as one INSERT ... SELECT over a
 * VALUES list, because it runs in every transaction that stores events: without a subscribed endpoint it
 * costs one probe of a small partial index, plus a primary-key probe of `jobs` per final event, not a query
 * per event. A delivery's id is `<endpoint>.<event id>` (or `callback.<event id>`), so the same event never
 * fans out twice.
 */
export async function insertEventDeliveries(
  tx: Tx,
  dialect: Dialect,
  triggers: WebhookTrigger[],
  now: number,
): Promise<void> {
  if (triggers.length === 0) return;
  const p = (n: number) => placeholder(dialect, n);
  // Parameters in the order they appear in the text (SQLite's `?` are positional).
  const rows = triggers.map(
    (_, i) => `(cast(${p(i * 5 + 1)} as bigint), ${p(i * 5 + 2)}, ${p(i * 5 + 3)}, ${p(i * 5 + 4)}, ${p(i * 5 + 5)})`,
  );
  const parameters: unknown[] = triggers.flatMap((t) => [t.eventId, t.vendorId, t.jobId, t.batchId, t.eventType]);
  parameters.push(now, now, now, now);
  const nowAt = triggers.length * 5 + 1;
  const pending = (at: number) => `'pending', 0, cast(${p(at)} as bigint), cast(${p(at + 1)} as bigint)`;
  const finalTypes = FINAL_EVENT_TYPES.map((t) => `'${t}'`).join(', ');
  const text =
    `with ev (event_id, vendor_id, job_id, batch_id, event_type) as (values ${rows.join(', ')}) ` +
    `insert into webhook_deliveries (id, endpoint_id, url, vendor_id, event_type, job_id, batch_id, state, attempts, next_attempt_at, created_at) ` +
    `select e.id || '.' || ev.event_id, e.id, cast(null as text), e.vendor_id, ev.event_type, ev.job_id, ev.batch_id, ${pending(nowAt)} ` +
    `from ev join webhook_endpoints e on e.vendor_id = ev.vendor_id and e.status = 'enabled' ` +
    `where e.events like ('%"' || ev.event_type || '"%') ` +
    `union all select 'callback.' || ev.event_id, cast(null as text), j.webhook_url, ev.vendor_id, ev.event_type, ev.job_id, ev.batch_id, ${pending(nowAt + 2)} ` +
    `from ev join jobs j on j.id = ev.job_id ` +
    `where ev.event_type in (${finalTypes}) and j.webhook_url is not null on conflict (id) do nothing`;
  await tx.executeQuery(CompiledQuery.raw(text, parameters));
}

/**
 * A `batch.completed` delivery for each batch of `batchIds` (of `vendorId`) with no job left to run, per
 * subscribed endpoint. Called in the transaction that finished a batch job, and again by the maintainer for
 * recently finished batches: on PostgreSQL two transactions finishing a batch's last two jobs do not see each
 * other's change, so neither may find the batch complete. The id `<endpoint>.batch.<batch>` makes it once.
 */
export async function insertBatchDeliveries(tx: Tx, vendorId: string, batchIds: string[], now: number): Promise<void> {
  if (batchIds.length === 0) return;
  await tx
    .insertInto('webhook_deliveries')
    .columns([
      'id',
      'endpoint_id',
      'vendor_id',
      'event_type',
      'job_id',
      'batch_id',
      'state',
      'attempts',
      'next_attempt_at',
      'created_at',
    ])
    .expression((eb) =>
      eb
        .selectFrom('webhook_endpoints as e')
        .innerJoin('jobs as j', (join) => join.onRef('j.vendor_id', '=', 'e.vendor_id'))
        .select([
          sql<string>`e.id || '.batch.' || j.batch_id`.as('id'),
          'e.id as endpoint_id',
          'e.vendor_id',
          sql<WebhookEventType>`'batch.completed'`.as('event_type'),
          sql<string>`max(j.id)`.as('job_id'),
          'j.batch_id',
          sql<string>`'pending'`.as('state'),
          sql<number>`0`.as('attempts'),
          sql<number>`cast(${now} as bigint)`.as('next_attempt_at'),
          sql<number>`cast(${now} as bigint)`.as('created_at'),
        ])
        .where('e.vendor_id', '=', vendorId)
        .where('e.status', '=', 'enabled')
        .where('e.events', 'like', '%"batch.completed"%')
        .where('j.batch_id', 'in', batchIds)
        .groupBy(['e.id', 'e.vendor_id', 'j.batch_id'])
        .having(sql<boolean>`sum(case when j.state in ('queued', 'delayed', 'running') then 1 else 0 end) = 0`),
    )
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** Batches of vendors with a `batch.completed` endpoint whose jobs finished since `since` (for the sweep). */
export async function selectRecentlyFinishedBatches(
  tx: Tx,
  since: number,
): Promise<{ vendor_id: string; batch_id: string }[]> {
  const rows = await tx
    .selectFrom('jobs')
    .select(['vendor_id', 'batch_id'])
    .distinct()
    .where('finished_at', '>=', since)
    .where('batch_id', 'is not', null)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('webhook_endpoints as e')
          .select('e.id')
          .whereRef('e.vendor_id', '=', 'jobs.vendor_id')
          .where('e.status', '=', 'enabled')
          .where('e.events', 'like', '%"batch.completed"%'),
      ),
    )
    .execute();
  return rows as { vendor_id: string; batch_id: string }[];
}

/** Due and not leased to a live worker: what a claim may take. */
const dueAt = (now: number) =>
  sql`state = 'pending' and next_attempt_at <= ${now} and (lease_expires_at is null or lease_expires_at < ${now})`;

/**
 * The vendors that have pending deliveries, in id order: a loose scan of `webhook_deliveries_pending_by_vendor`
 * (one index probe per vendor, not a read of every pending row), so that a claim can serve them in turn.
 */
export async function selectVendorsWithPendingDeliveries(tx: Tx): Promise<string[]> {
  const { rows } = await sql<{ vendor_id: string }>`with recursive v (vendor_id) as (
      select min(vendor_id) from webhook_deliveries where state = 'pending'
      union all
      select (select min(d.vendor_id) from webhook_deliveries d where d.state = 'pending' and d.vendor_id > v.vendor_id)
      from v where v.vendor_id is not null)
    select vendor_id from v where vendor_id is not null`.execute(tx);
  return rows.map((r) => r.vendor_id);
}

/**
 * The oldest due delivery of one vendor (an index range of `webhook_deliveries_pending_by_vendor`). On
 * PostgreSQL the row stays locked until the claim commits, and one another claimer holds is skipped.
 */
export async function selectOldestDueOf(
  tx: Tx,
  dialect: Dialect,
  vendorId: string,
  now: number,
): Promise<string | undefined> {
  const lock = dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const { rows } = await sql<{ id: string }>`select id from webhook_deliveries
    where vendor_id = ${vendorId} and ${dueAt(now)} order by next_attempt_at limit 1 ${lock}`.execute(tx);
  return rows[0]?.id;
}

/** Up to `limit` due deliveries of any vendor, oldest first, other than `taken` (locked as above). */
export async function selectOldestDue(
  tx: Tx,
  dialect: Dialect,
  now: number,
  limit: number,
  taken: string[],
): Promise<string[]> {
  const lock = dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const others = taken.length > 0 ? sql`and id not in (${sql.join(taken)})` : sql``;
  const { rows } = await sql<{ id: string }>`select id from webhook_deliveries
    where ${dueAt(now)} ${others} order by next_attempt_at limit ${limit} ${lock}`.execute(tx);
  return rows.map((r) => r.id);
}

/**
 * Leases the deliveries `ids` (found due by the claim's transaction) to `owner` until `leaseUntil`, counting the
 * attempt. A delivery whose worker died comes back when its lease expires.
 */
export async function leaseDeliveries(
  tx: Tx,
  ids: string[],
  owner: string,
  now: number,
  leaseUntil: number,
): Promise<WebhookDeliveryRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await sql<WebhookDeliveryRow>`update webhook_deliveries
    set lease_owner = ${owner}, lease_expires_at = ${leaseUntil}, attempts = attempts + 1, last_attempt_at = ${now}
    where id in (${sql.join(ids)}) returning *`.execute(tx);
  return rows;
}

export interface DeliveryOutcome {
  state: 'pending' | 'succeeded' | 'failed';
  nextAttemptAt: number;
  status: number | null;
  error: string | null;
}

/** Records one attempt's outcome, fenced by the lease: a worker whose lease was taken over changes nothing. */
export async function recordDeliveryOutcome(
  tx: Tx,
  id: string,
  owner: string,
  outcome: DeliveryOutcome,
  now: number,
): Promise<boolean> {
  const result = await tx
    .updateTable('webhook_deliveries')
    .set({
      state: outcome.state,
      next_attempt_at: outcome.nextAttemptAt,
      last_status: outcome.status,
      last_error: outcome.error,
      lease_owner: null,
      lease_expires_at: null,
      finished_at: outcome.state === 'pending' ? null : now,
    })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function countEndpoints(tx: Tx, vendorId: string): Promise<number> {
  const row = await tx
    .selectFrom('webhook_endpoints')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('vendor_id', '=', vendorId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertEndpoint(tx: Tx, row: WebhookEndpointRow): Promise<void> {
  await tx.insertInto('webhook_endpoints').values(row).execute();
}

/** One of the vendor's endpoints; another vendor's is not found. */
export async function selectEndpoint(tx: Tx, id: string, vendorId: string): Promise<WebhookEndpointRow | undefined> {
  return tx
    .selectFrom('webhook_endpoints')
    .selectAll()
    .where('id', '=', id)
    .where('vendor_id', '=', vendorId)
    .executeTakeFirst();
}

export async function selectEndpoints(tx: Tx, vendorId: string): Promise<WebhookEndpointRow[]> {
  return tx.selectFrom('webhook_endpoints').selectAll().where('vendor_id', '=', vendorId).orderBy('id').execute();
}

/** Endpoints by id regardless of vendor: for the delivery worker, which acts on deliveries already scoped. */
export async function selectEndpointsById(tx: Tx, ids: string[]): Promise<WebhookEndpointRow[]> {
  if (ids.length === 0) return [];
  return tx.selectFrom('webhook_endpoints').selectAll().where('id', 'in', ids).execute();
}

export async function updateEndpoint(
  tx: Tx,
  id: string,
  vendorId: string,
  changes: Partial<Omit<WebhookEndpointRow, 'id' | 'vendor_id' | 'created_at'>>,
): Promise<boolean> {
  const result = await tx
    .updateTable('webhook_endpoints')
    .set(changes)
    .where('id', '=', id)
    .where('vendor_id', '=', vendorId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * The columns a rotation sets, for an endpoint's secret and a vendor's callback secret alike: `secret` becomes
 * the previous one, signing alongside the new one until `until`. Read in the UPDATE itself, so two rotations
 * at once cannot lose a secret that a receiver was just given.
 */
function rotatedSecrets(secret: string, until: number, now: number) {
  return { secret, previous_secret: sql.ref<string>('secret'), previous_secret_until: until, updated_at: now };
}

export async function rotateEndpointSecret(
  tx: Tx,
  id: string,
  vendorId: string,
  secret: string,
  until: number,
  now: number,
): Promise<boolean> {
  const result = await tx
    .updateTable('webhook_endpoints')
    .set(rotatedSecrets(secret, until, now))
    .where('id', '=', id)
    .where('vendor_id', '=', vendorId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Creates the callback secrets of those `vendors` that have none yet (the secret comes from `secretFor`). */
export async function insertMissingCallbackSecrets(
  tx: Tx,
  vendorIds: string[],
  secretFor: () => string,
  now: number,
): Promise<void> {
  if (vendorIds.length === 0) return;
  await tx
    .insertInto('webhook_callback_secrets')
    .values(
      vendorIds.map((vendor_id) => ({
        vendor_id,
        secret: secretFor(),
        previous_secret: null,
        previous_secret_until: null,
        created_at: now,
        updated_at: now,
      })),
    )
    .onConflict((oc) => oc.column('vendor_id').doNothing())
    .execute();
}

export async function selectCallbackSecrets(tx: Tx, vendorIds: string[]): Promise<WebhookCallbackSecretRow[]> {
  if (vendorIds.length === 0) return [];
  return tx.selectFrom('webhook_callback_secrets').selectAll().where('vendor_id', 'in', vendorIds).execute();
}

export async function rotateCallbackSecret(
  tx: Tx,
  vendorId: string,
  secret: string,
  until: number,
  now: number,
): Promise<void> {
  await tx
    .updateTable('webhook_callback_secrets')
    .set(rotatedSecrets(secret, until, now))
    .where('vendor_id', '=', vendorId)
    .execute();
}

/** Deletes an endpoint of the vendor with its deliveries; false if the vendor has no such endpoint. */
export async function deleteEndpoint(tx: Tx, id: string, vendorId: string): Promise<boolean> {
  const owned = await selectEndpoint(tx, id, vendorId);
  if (!owned) return false;
  await tx.deleteFrom('webhook_deliveries').where('endpoint_id', '=', id).execute();
  await tx.deleteFrom('webhook_endpoints').where('id', '=', id).execute();
  return true;
}

/**
 * The vendor's latest deliveries, newest first: of one endpoint, or reporting one job's events (to endpoints
 * and to the job's own callback; a batch's delivery names one of its jobs only to have a job id).
 */
export async function selectDeliveries(
  tx: Tx,
  vendorId: string,
  of: { endpointId: string } | { jobId: string },
  limit: number,
) {
  const query = tx.selectFrom('webhook_deliveries').selectAll().where('vendor_id', '=', vendorId);
  const scoped =
    'endpointId' in of
      ? query.where('endpoint_id', '=', of.endpointId)
      : query.where('job_id', '=', of.jobId).where('event_type', '<>', 'batch.completed');
  return scoped.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}

export async function selectDelivery(tx: Tx, id: string, endpointId: string, vendorId: string) {
  return tx
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('id', '=', id)
    .where('endpoint_id', '=', endpointId)
    .where('vendor_id', '=', vendorId)
    .executeTakeFirst();
}

/** Queues a delivery again from the start of the retry schedule (a vendor's replay). */
export async function requeueDelivery(tx: Tx, id: string, now: number): Promise<void> {
  await tx
    .updateTable('webhook_deliveries')
    .set({
      state: 'pending',
      attempts: 0,
      next_attempt_at: now,
      finished_at: null,
      lease_owner: null,
      lease_expires_at: null,
    })
    .where('id', '=', id)
    .execute();
}

/** Deliveries that ended before `before` (retention). */
export async function deleteFinishedDeliveries(tx: Tx, before: number): Promise<number> {
  const result = await tx.deleteFrom('webhook_deliveries').where('finished_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
