import { PixqError, toJobError } from '../errors.js';
import { finishRunningJob, finishSucceededJobs, insertOutputs, recordPublishError } from '../store/sql/finish-job.js';
import { renewLeases, selectCancelRequested } from '../store/sql/leases.js';
import { updateProgress } from '../store/sql/progress.js';
import type { Tx } from '../store/index.js';
import { writeAsset } from './assets.js';
import type { BlobLedgerService } from './blobs.js';
import type { EmitEvents, EngineContext } from './context.js';
import { backoffDelay } from './backoff.js';
import { claimJobs, type ClaimResult } from './claims.js';
import { succeededRow, toJob } from './rows.js';
import type { Job, JobOutput, JobProgress } from './types.js';

export interface Outcome {
  outputs: JobOutput[];
  result?: Record<string, unknown>;
}

/**
 * The worker's side of the engine: claim jobs, keep their leases, report progress, and record how each
 * attempt ended. Every change is fenced by the lease owner, so a worker that lost a job changes nothing.
 */
export class WorkService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ledger: BlobLedgerService,
  ) {}

  /**
   * Records the successes of jobs that just finished and claims new jobs for the freed slots, in one
   * transaction: on a busy worker one commit then serves many jobs in both directions.
   */
  async finishAndClaim(owner: string, successes: (Outcome & { job: Job })[], slots: Record<string, number>) {
    const now = this.ctx.now();
    return this.ctx.write(async (tx, emit) => {
      const recorded = await recordSuccesses(tx, emit, owner, successes, now);
      await this.publishOutputs(
        tx,
        successes.filter((_, i) => recorded[i]),
        now,
      );
      const anySlot = Object.values(slots).some((n) => n > 0);
      const result: ClaimResult = anySlot
        ? await claimJobs(this.ctx, tx, emit, owner, slots)
        : { jobs: [], contended: false };
      return { recorded, claimed: { jobs: result.jobs.map(toJob), contended: result.contended } };
    });
  }

  /**
   * Publishes the first output of each succeeded job that asked for it, in the success's transaction, one vendor
   * after another in id order (each locks its vendor's row: the same order in every process cannot deadlock).
   * A publish the storage quota refuses leaves the job succeeded, with the refusal recorded on it.
   */
  private async publishOutputs(tx: Tx, succeeded: (Outcome & { job: Job })[], now: number) {
    const publishing = succeeded
      .filter(({ job, outputs }) => job.publishPath !== null && outputs.length > 0)
      .sort((a, b) => (a.job.vendorId < b.job.vendorId ? -1 : a.job.vendorId > b.job.vendorId ? 1 : 0));
    for (const { job, outputs } of publishing) {
      const [o] = outputs;
      const image = { blob: o.blob, contentType: o.contentType, width: o.width, height: o.height, bytes: o.bytes };
      const write = { vendorId: job.vendorId, path: job.publishPath!, image, jobId: job.id, now };
      try {
        await writeAsset(tx, this.ctx.store.dialect, this.ledger, {
          ...write,
          defaultMaxBytes: this.ctx.options.maxStorageBytes ?? null,
        });
      } catch (err) {
        if (!(err instanceof PixqError) || err.code !== 'storage_quota_exceeded') throw err;
        await recordPublishError(tx, job.id, { code: err.code, message: err.message });
      }
    }
  }

  /** Extends the leases of `ids`; reports which were lost and which should be cancelled. */
  async heartbeat(owner: string, ids: string[]) {
    const now = this.ctx.now();
    const { renewed, cancelRequested } = await this.ctx.write((tx) =>
      renewLeases(tx, owner, ids, now, this.ctx.options.leaseMs),
    );
    return { lost: ids.filter((id) => !renewed.includes(id)), cancelRequested };
  }

  async cancelRequested(owner: string, ids: string[]): Promise<string[]> {
    return this.ctx.read((db) => selectCancelRequested(db, owner, ids));
  }

  async progress(owner: string, jobId: string, progress: Partial<JobProgress>): Promise<boolean> {
    const now = this.ctx.now();
    return this.ctx.write(async (tx, emit) => {
      const percent = Math.max(0, Math.min(100, progress.percent ?? 0));
      const update = { percent, stage: progress.stage ?? null, message: progress.message ?? null };
      const row = await updateProgress(tx, owner, jobId, update, now);
      if (row) emit([row], 'progress');
      return Boolean(row);
    });
  }

  /**
   * Records a failed attempt. A retryable error with attempts left puts the job back as `delayed` after a
   * backoff (at least the error's `retryAfterMs`, an upstream's `retry-after`); anything else ends it `failed` with the error kept. An error coded `cancelled` ends it `cancelled`.
   */
  async fail(owner: string, job: Job, err: unknown): Promise<boolean> {
    const now = this.ctx.now();
    const error = toJobError(err);
    const retry = error.retryable && job.attempts < job.maxAttempts;
    const state = error.code === 'cancelled' ? 'cancelled' : retry ? 'delayed' : 'failed';
    const backoff = retry
      ? Math.max(backoffDelay(job.attempts, job.backoff.baseMs, job.backoff.maxMs), error.retryAfterMs ?? 0)
      : 0;
    const changed = await this.ctx.write(async (tx, emit) => {
      const row = await finishRunningJob(tx, job.id, owner, {
        state,
        error_code: error.code,
        error_message: error.message.slice(0, 2000),
        error_retryable: error.retryable ? 1 : 0,
        run_at: now + backoff,
        finished_at: state === 'delayed' ? null : now,
        updated_at: now,
      });
      if (row) emit([row]);
      return Boolean(row);
    });
    if (changed && state === 'delayed' && backoff === 0) this.ctx.bus.wake([job.type]);
    return changed;
  }

  /**
   * Puts a job back in the queue without counting the attempt: used when a worker shuts down before the
   * job could finish, which is not the job's fault.
   */
  async release(owner: string, job: Job): Promise<boolean> {
    const now = this.ctx.now();
    const changed = await this.ctx.write(async (tx, emit) => {
      const row = await finishRunningJob(tx, job.id, owner, {
        state: 'queued',
        attempts: Math.max(0, job.attempts - 1),
        run_at: now,
        started_at: null,
        updated_at: now,
      });
      if (row) emit([row]);
      return Boolean(row);
    });
    if (changed) this.ctx.bus.wake([job.type]);
    return changed;
  }
}

async function recordSuccesses(
  tx: Tx,
  emit: EmitEvents,
  owner: string,
  successes: (Outcome & { job: Job })[],
  now: number,
) {
  const ids = await finishSucceededJobs(
    tx,
    owner,
    successes.map(({ job, result }) => ({ id: job.id, result: result ? JSON.stringify(result) : null })),
    now,
  );
  const done = new Set(ids);
  const recorded = successes.filter(({ job }) => done.has(job.id));
  const outputs = recorded.flatMap(({ job, outputs: list }) =>
    list.map((o, idx) => ({
      job_id: job.id,
      idx,
      blob: o.blob,
      content_type: o.contentType,
      width: o.width,
      height: o.height,
      bytes: o.bytes,
    })),
  );
  await insertOutputs(tx, outputs);
  emit(recorded.map(({ job }) => succeededRow(job)));
  return successes.map(({ job }) => done.has(job.id));
}
