import {
  blobInUse,
  deleteBlobRow,
  keepBlob,
  markBlobsUnreferenced,
  selectDueBlobs,
  touchBlob,
} from '../store/sql/blobs.js';
import type { Tx } from '../store/index.js';
import type { EngineContext } from './context.js';

/**
 * How long a blob is safe from the sweep after a writer touched it or a reference to it was deleted. It covers
 * the time from a `put` to the commit of the row that refers to the blob (a job may run for up to a day before
 * its outputs are recorded), and from reading a reference (an upload id resolved at submit) to inserting
 * another (the job), so it is longer than the longest attempt a job may have.
 */
export const BLOB_GRACE_MS = 25 * 3600_000;

const SWEEP_BATCH = 100;

/**
 * The blob ledger: the database's record of which blobs the sweep may delete, and when. Blob stores are
 * content-addressed, so the same bytes stored again land under a key that may be about to be deleted. The
 * rules that keep a new upload's bytes:
 * - a writer touches the key (pushing its check a grace period ahead) before its bytes appear under it, and
 *   only then decides whether they are already there;
 * - nothing deletes a blob except the sweep, and only in the transaction that found it due and unreferenced,
 *   while holding its row: a writer's touch waits for that transaction, then finds the blob gone and stores it.
 */
export class BlobLedgerService {
  constructor(private readonly ctx: EngineContext) {}

  async touch(key: string): Promise<void> {
    await this.ctx.write((tx) => touchBlob(tx, key, this.ctx.now() + BLOB_GRACE_MS));
  }

  /** For a transaction that deleted the last references to `keys`: the sweep checks them after the grace period. */
  markUnreferenced(tx: Tx, keys: string[]): Promise<void> {
    return markBlobsUnreferenced(tx, keys, this.ctx.now() + BLOB_GRACE_MS);
  }

  /**
   * Deletes, through `deleteObject`, every blob whose check is due (at `now`) and which nothing refers to; a
   * referenced one is left alone until a reference to it is deleted again. The object goes inside the
   * transaction, before its row: a crash in between leaves the row, so the next sweep deletes it again.
   */
  async sweep(deleteObject: (key: string) => Promise<void>, now = this.ctx.now()): Promise<number> {
    let deleted = 0;
    for (;;) {
      const { due, gone } = await this.ctx.write(async (tx) => {
        const keys = await selectDueBlobs(tx, this.ctx.store.dialect, now, SWEEP_BATCH);
        let removed = 0;
        for (const key of keys) {
          if (await blobInUse(tx, key)) {
            await keepBlob(tx, key);
          } else {
            await deleteObject(key);
            await deleteBlobRow(tx, key);
            removed++;
          }
        }
        return { due: keys.length, gone: removed };
      });
      deleted += gone;
      if (due < SWEEP_BATCH) return deleted;
    }
  }
}
