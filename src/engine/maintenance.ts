import { deleteFinishedJobs, deleteOldUploads } from '../store/sql/delete-finished-jobs.js';
import { deleteEventsBefore } from '../store/sql/events.js';
import { endExpiredLease, selectExpiredLeases } from '../store/sql/leases.js';
import { promoteDelayed } from '../store/sql/promote-delayed.js';
import { deleteBucketsBefore } from '../store/sql/rate-buckets.js';
import { releaseStorage } from '../store/sql/storage.js';
import { deleteStaleWorkers } from '../store/sql/workers.js';
import type { JobRow, Tx } from '../store/index.js';
import type { BlobLedgerService } from './blobs.js';
import type { EngineContext } from './context.js';

const BATCH = 500;
/** Events are for live streams and short reconnects; a day is ample. */
export const EVENT_RETENTION_MS = 24 * 3600_000;

/**
 * Housekeeping any process may run at any time, concurrently with others: every change is conditional
 * on the state it read, so two processes never apply the same change twice.
 */
export class MaintenanceService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ledger: BlobLedgerService,
  ) {}

  /**
   * Running jobs whose lease ran out (their worker died or stalled) come back: queued again while attempts
   * remain (the lost attempt counts), failed with `lease_expired` after the last, cancelled if that was asked.
   */
  async reapExpiredLeases(): Promise<number> {
    const now = this.ctx.now();
    const reaped = await this.ctx.write(async (tx, emit) => {
      const expired = await selectExpiredLeases(tx, now, BATCH);
      const changed: JobRow[] = [];
      for (const job of expired) {
        const row = await this.reap(tx, job, now);
        if (row) changed.push(row);
      }
      emit(changed);
      return changed;
    });
    if (reaped.length > 0) this.ctx.bus.wake([...new Set(reaped.map((j) => j.type))]);
    return reaped.length;
  }

  async promoteDelayed(): Promise<number> {
    const now = this.ctx.now();
    const promoted = await this.ctx.write(async (tx, emit) => {
      const rows = await promoteDelayed(tx, now, BATCH);
      emit(rows);
      return rows;
    });
    if (promoted.length > 0) this.ctx.bus.wake([...new Set(promoted.map((j) => j.type))]);
    return promoted.length;
  }

  /**
   * Deletes jobs finished and uploads made more than `retentionMs` ago, with their outputs; the blobs nothing
   * refers to any more go to the ledger, and its sweep deletes, through `deleteBlob`, those whose grace period
   * is over. Events go by age (a day), as do dead workers' rows. Returns the number of jobs deleted.
   */
  async prune(retentionMs: number, deleteBlob: (key: string) => Promise<void>): Promise<number> {
    const before = this.ctx.now() - retentionMs;
    const jobs = await this.pruneInBatches((tx) => deleteFinishedJobs(tx, before, BATCH));
    await this.pruneInBatches((tx) => deleteOldUploads(tx, before, BATCH));
    await this.ledger.sweep(deleteBlob);
    await this.pruneEphemera();
    return jobs;
  }

  private async pruneInBatches(
    step: (tx: Tx) => Promise<{ deleted: number; orphanBlobs: string[]; freed: { vendorId: string; bytes: number }[] }>,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.ctx.write(async (tx) => {
        const result = await step(tx);
        await this.ledger.markUnreferenced(tx, result.orphanBlobs);
        await releaseStorage(tx, result.freed);
        return result.deleted;
      });
      total += deleted;
      if (deleted < BATCH) return total;
    }
  }

  private async pruneEphemera() {
    const now = this.ctx.now();
    await this.ctx.write(async (tx) => {
      await deleteEventsBefore(tx, now - EVENT_RETENTION_MS);
      await deleteStaleWorkers(tx, now - 10 * this.ctx.options.leaseMs);
      await deleteBucketsBefore(tx, now - EVENT_RETENTION_MS);
    });
  }

  private reap(tx: Tx, job: JobRow, now: number) {
    const outcome = job.cancel_requested
      ? { state: 'cancelled' as const, finished_at: now }
      : job.attempts >= job.max_attempts
        ? { state: 'failed' as const, finished_at: now }
        : { state: 'queued' as const, run_at: now };
    return endExpiredLease(
      tx,
      job,
      {
        ...outcome,
        error_code: job.cancel_requested ? null : 'lease_expired',
        error_message: job.cancel_requested ? null : `worker ${job.lease_owner} stopped renewing its lease`,
        error_retryable: job.cancel_requested ? null : 1,
      },
      now,
    );
  }
}
