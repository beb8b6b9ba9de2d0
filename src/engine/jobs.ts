import { PixqError, notFound, validationFailed } from '../errors.js';
import { newId } from '../ids.js';
import { changeJobState, selectJob } from '../store/sql/change-job-state.js';
import { selectEventsAfter, type EventFilter } from '../store/sql/events.js';
import { countBacklog, insertJobs, selectUsedIdempotencyKeys, type NewJobRow } from '../store/sql/insert-jobs.js';
import {
  countJobs,
  selectBatchProgress,
  selectJobByIdempotencyKey,
  selectJobOutputs,
  selectJobPage,
  selectJobTargets,
  selectOutputsOfJobs,
  type JobFilterQuery,
} from '../store/sql/read-jobs.js';
import { lockVendorById } from '../store/sql/vendors.js';
import { FINISHED_STATES, JOB_STATES, type JobRow, type JobState, type Tx } from '../store/index.js';
import type { EmitEvents, EngineContext } from './context.js';
import { JOB_LIMITS, type JobLimit } from './limits.js';
import { fromStoredEvent, toJob, toOutput } from './rows.js';
import { checkActive } from './vendors.js';
import { checkAssetPath } from './assets.js';
import type { Job, JobEvent, JobOutput, JobSpec } from './types.js';

export interface JobFilter {
  state?: JobState;
  type?: string;
  batchId?: string;
  createdAfter?: number;
  createdBefore?: number;
  /** Top-level metadata values the job has, all of them; values compared as strings. */
  metadata?: { key: string; value: string }[];
}

/** A job a bulk action found, with what charging its retry needs. */
export interface JobTarget {
  id: string;
  vendorId: string;
  type: string;
  options: Record<string, unknown>;
}

export type BulkAction = 'cancel' | 'retry';

export interface JobPage {
  jobs: (Job & { outputs: JobOutput[] })[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface BatchSummary {
  id: string;
  total: number;
  counts: Record<JobState, number>;
  percent: number;
}

const RETRYABLE_STATES: JobState[] = ['failed', 'cancelled'];
const CANCELLABLE_STATES: JobState[] = ['queued', 'delayed', 'running'];
// Jobs changed per transaction by a bulk action: a write lock is held no longer than a few hundred changes take.
const BULK_CHUNK = 200;

export class JobService {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * Enqueues jobs for one vendor in one transaction: all of them or none. A job whose idempotency key the
   * vendor used before returns the existing job (`created: false`) instead of a new one.
   */
  async enqueue(vendorId: string, specs: JobSpec[], batchId?: string): Promise<{ jobs: Job[]; created: boolean[] }> {
    const now = this.ctx.now();
    const rows = specs.map((spec) => this.newRow(vendorId, spec, now, batchId));
    const result = await this.ctx.write(async (tx, emit) => {
      await this.checkVendorMayEnqueue(tx, vendorId, () => newJobCount(tx, vendorId, rows));
      const inserted = await insertJobs(tx, this.ctx.store.dialect, rows);
      emit(inserted.rows.filter((_, i) => inserted.created[i]));
      return inserted;
    });
    this.ctx.bus.wake([...new Set(specs.map((s) => s.type))]);
    return { jobs: result.rows.map(toJob), created: result.created };
  }

  async get(id: string, vendorId?: string): Promise<Job & { outputs: JobOutput[] }> {
    const row = await this.ctx.read((db) => selectJob(db, id, vendorId));
    if (!row) throw notFound('job');
    const outputs = await this.ctx.read((db) => selectJobOutputs(db, id));
    return { ...toJob(row), outputs: outputs.map(toOutput) };
  }

  /** The vendor's job submitted with this idempotency key (how a compat API finds a job by the caller's id). */
  async getByIdempotencyKey(vendorId: string, key: string): Promise<Job & { outputs: JobOutput[] }> {
    const row = await this.ctx.read((db) => selectJobByIdempotencyKey(db, vendorId, key));
    if (!row) throw notFound('job');
    return this.get(row.id, vendorId);
  }

  /** A vendor's jobs (every vendor's when `vendorId` is undefined), newest first, `limit` at a time. */
  async list(vendorId: string | undefined, filter: JobFilter, limit: number, cursor?: string): Promise<JobPage> {
    // One more than asked: whether it exists says if there is a next page.
    const rows = await this.ctx.read((db) =>
      selectJobPage(db, { ...storeFilter(vendorId, filter), beforeId: cursor, limit: limit + 1 }),
    );
    const page = rows.slice(0, limit).map(toJob);
    const outputs = await this.ctx.read((db) =>
      selectOutputsOfJobs(
        db,
        page.map((j) => j.id),
      ),
    );
    const jobs = page.map((job) => ({ ...job, outputs: outputs.filter((o) => o.job_id === job.id).map(toOutput) }));
    return { jobs, nextCursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  /** How many of a vendor's (or every vendor's) jobs match the filter. */
  count(vendorId: string | undefined, filter: JobFilter): Promise<number> {
    return this.ctx.read((db) => countJobs(db, storeFilter(vendorId, filter)));
  }

  /**
   * The jobs matching the filter that `action` applies to (cancel: queued, delayed, or running and not yet
   * asked to cancel; retry: failed or cancelled), newest first, at most `max`; `more` when others remain.
   */
  async actionable(
    action: BulkAction,
    vendorId: string | undefined,
    filter: JobFilter,
    max: number,
  ): Promise<{ jobs: JobTarget[]; more: boolean }> {
    const allowed = action === 'cancel' ? CANCELLABLE_STATES : RETRYABLE_STATES;
    const states = filter.state === undefined ? allowed : allowed.filter((s) => s === filter.state);
    const query = { ...storeFilter(vendorId, filter), states, notCancelRequested: action === 'cancel', limit: max + 1 };
    const rows = await this.ctx.read((db) => selectJobTargets(db, query));
    const jobs = rows.slice(0, max).map((r) => ({
      id: r.id,
      vendorId: r.vendor_id,
      type: r.type,
      options: JSON.parse(r.options) as Record<string, unknown>,
    }));
    return { jobs, more: rows.length > max };
  }

  /**
   * Cancels or retries each job as `cancel` and `retry` do (the same events and webhooks), a chunk of jobs per
   * transaction. A job whose state moved on meanwhile is left alone; a retry the vendor's status or backlog
   * quota refuses is too. Returns how many changed; when none did and a refusal was the reason, throws it.
   */
  async actOnAll(action: BulkAction, ids: string[], vendorId: string | undefined): Promise<number> {
    let changed = 0;
    let refusal: PixqError | undefined;
    for (let i = 0; i < ids.length; i += BULK_CHUNK) {
      const chunk = ids.slice(i, i + BULK_CHUNK);
      const now = this.ctx.now();
      const rows = await this.ctx.write(async (tx, emit) => {
        const done: JobRow[] = [];
        for (const id of chunk) {
          const row = await (
            action === 'cancel'
              ? this.cancelOne(tx, emit, id, vendorId, now)
              : this.retryOne(tx, emit, id, vendorId, now)
          ).catch((err: unknown) => {
            if (!(err instanceof PixqError) || err.status >= 500) throw err;
            refusal ??= err;
            return undefined;
          });
          if (row) done.push(row);
        }
        return done;
      });
      changed += rows.length;
      this.afterChanges(rows);
    }
    if (changed === 0 && refusal) throw refusal;
    return changed;
  }

  /**
   * A vendor's stored events after `afterId`, oldest first, optionally for one job or batch: what a
   * reconnecting stream missed.
   */
  async eventsAfter(filter: EventFilter): Promise<JobEvent[]> {
    const rows = await this.ctx.read((db) => selectEventsAfter(db, filter));
    return rows.map(fromStoredEvent);
  }

  /** A vendor's batch (any vendor's, for the admin: `vendorId` undefined). */
  async batch(batchId: string, vendorId: string | undefined): Promise<BatchSummary> {
    const rows = await this.ctx.read((db) => selectBatchProgress(db, vendorId, batchId));
    if (rows.length === 0) throw notFound('batch');
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    let percentSum = 0;
    for (const row of rows) {
      counts[row.state]++;
      percentSum += FINISHED_STATES.includes(row.state) ? 100 : row.progress_percent;
    }
    return { id: batchId, total: rows.length, counts, percent: Math.round((percentSum / rows.length) * 10) / 10 };
  }

  /**
   * A queued or delayed job is cancelled at once. A running job is flagged; its worker aborts the handler
   * and records `cancelled` (or the reaper does, if that worker is gone).
   */
  async cancel(id: string, vendorId?: string): Promise<Job> {
    const now = this.ctx.now();
    const row = await this.ctx.write(
      async (tx, emit) =>
        (await this.cancelOne(tx, emit, id, vendorId, now)) ?? this.unchangeable(tx, id, vendorId, 'cancelled'),
    );
    this.afterChanges([row]);
    return toJob(row);
  }

  /** A failed or cancelled job is queued again with a fresh set of attempts. */
  async retry(id: string, vendorId?: string): Promise<Job> {
    const now = this.ctx.now();
    const row = await this.ctx.write(
      async (tx, emit) =>
        (await this.retryOne(tx, emit, id, vendorId, now)) ?? this.unchangeable(tx, id, vendorId, 'retried'),
    );
    this.afterChanges([row]);
    return toJob(row);
  }

  /** Cancels or flags one job in `tx`; undefined when it is missing or in a state that cannot be cancelled. */
  private async cancelOne(tx: Tx, emit: EmitEvents, id: string, vendorId: string | undefined, now: number) {
    const cancelled = await changeJobState(
      tx,
      { id, vendorId, from: ['queued', 'delayed'] },
      { state: 'cancelled', finished_at: now, updated_at: now, error_code: null, error_message: null },
    );
    if (cancelled) {
      emit([cancelled]);
      return cancelled;
    }
    return changeJobState(tx, { id, vendorId, from: ['running'] }, { cancel_requested: 1 });
  }

  /** Queues one job again in `tx`; undefined when it is missing or not failed or cancelled. */
  private async retryOne(tx: Tx, emit: EmitEvents, id: string, vendorId: string | undefined, now: number) {
    // A retry queues a job again, so the vendor's status and backlog quota apply as to a submission.
    const job = await selectJob(tx, id, vendorId);
    if (!job) return undefined;
    if (RETRYABLE_STATES.includes(job.state)) await this.checkVendorMayEnqueue(tx, job.vendor_id, async () => 1);
    const queued = await changeJobState(
      tx,
      { id, vendorId, from: RETRYABLE_STATES },
      {
        state: 'queued',
        attempts: 0,
        run_at: now,
        cancel_requested: 0,
        error_code: null,
        error_message: null,
        error_retryable: null,
        result: null,
        publish_error: null,
        progress_percent: 0,
        progress_stage: null,
        progress_message: null,
        started_at: null,
        finished_at: null,
        updated_at: now,
      },
    );
    if (queued) emit([queued]);
    return queued;
  }

  /** After the commit: a flagged running job's worker is told to abort, and workers wake for queued types. */
  private afterChanges(rows: JobRow[]) {
    for (const row of rows) if (row.state === 'running') this.ctx.bus.requestCancel(row.id);
    const queued = [...new Set(rows.filter((r) => r.state === 'queued').map((r) => r.type))];
    if (queued.length > 0) this.ctx.bus.wake(queued);
  }

  private async unchangeable(tx: Tx, id: string, vendorId: string | undefined, verb: string): Promise<never> {
    const existing = await selectJob(tx, id, vendorId);
    if (!existing) throw notFound('job');
    throw new PixqError('invalid_state', `a ${existing.state} job cannot be ${verb}`, {
      status: 409,
      details: { state: existing.state },
    });
  }

  /**
   * The vendor is active and the jobs it is adding (counted under its lock, which holds till commit) fit its
   * backlog quota.
   */
  private async checkVendorMayEnqueue(tx: Tx, vendorId: string, countAdded: () => Promise<number>) {
    const vendor = await lockVendorById(tx, this.ctx.store.dialect, vendorId);
    if (!vendor) throw notFound('vendor');
    checkActive(vendor);
    if (vendor.max_queued === null) return;
    // A replay of existing jobs adds nothing, so it is answered even at (or, after a lowered quota, over) the quota.
    const count = await countAdded();
    if (count === 0) return;
    const backlog = await countBacklog(tx, vendorId);
    if (backlog + count > vendor.max_queued) {
      throw new PixqError(
        'quota_exceeded',
        `backlog quota of ${vendor.max_queued} waiting jobs would be exceeded (${backlog} waiting, ${count} submitted)`,
        { status: 429, details: { limit: vendor.max_queued, waiting: backlog } },
      );
    }
  }

  private newRow(vendorId: string, spec: JobSpec, now: number, batchId?: string): NewJobRow {
    const o = this.ctx.options;
    const runAt = now + checkLimit('delayMs', spec.delayMs ?? 0);
    const id = newId();
    return {
      id,
      vendor_id: vendorId,
      type: spec.type,
      state: runAt > now ? 'delayed' : 'queued',
      priority: checkLimit('priority', spec.priority ?? 0),
      options: JSON.stringify(spec.options ?? {}),
      input_blob: spec.inputBlob ?? null,
      input_url: spec.inputUrl ?? null,
      attempts: 0,
      max_attempts: checkLimit('maxAttempts', spec.maxAttempts ?? o.defaultMaxAttempts),
      backoff_base_ms: spec.backoff?.baseMs ?? o.backoffBaseMs,
      backoff_max_ms: spec.backoff?.maxMs ?? o.backoffMaxMs,
      timeout_ms: checkLimit('timeoutMs', spec.timeoutMs ?? o.defaultTimeoutMs),
      run_at: runAt,
      cancel_requested: 0,
      progress_percent: 0,
      idempotency_key: spec.idempotencyKey ?? null,
      batch_id: batchId ?? null,
      metadata: spec.metadata ? JSON.stringify(spec.metadata) : null,
      webhook_url: spec.webhookUrl ?? null,
      template: spec.template ?? null,
      publish_path: spec.publish === undefined ? null : publishPath(spec.publish, id),
      created_at: now,
      updated_at: now,
    };
  }
}

/** Where a job's output is published: the path given, or the prefix followed by the job's id. */
function publishPath(publish: NonNullable<JobSpec['publish']>, jobId: string): string {
  return checkAssetPath('path' in publish ? publish.path : publish.prefix + jobId);
}

function storeFilter(vendorId: string | undefined, { state, ...filter }: JobFilter): JobFilterQuery {
  return { vendorId, ...filter, states: state === undefined ? undefined : [state] };
}

/** How many of `rows` would be new jobs: those without an idempotency key, or with one not used yet. */
async function newJobCount(tx: Tx, vendorId: string, rows: NewJobRow[]): Promise<number> {
  const keys = [...new Set(rows.map((r) => r.idempotency_key).filter((k): k is string => typeof k === 'string'))];
  const used = await selectUsedIdempotencyKeys(tx, vendorId, keys);
  return rows.filter((r) => !r.idempotency_key).length + keys.filter((k) => !used.has(k)).length;
}

function checkLimit(name: JobLimit, value: number): number {
  const { min, max } = JOB_LIMITS[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw validationFailed(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}
