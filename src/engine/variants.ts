import {
  addCacheBytes,
  deleteVariants,
  insertVariant,
  selectLeastRecentlyUsed,
  selectVariant,
  touchVariants,
} from '../store/sql/asset-variants.js';
import type { AssetVariantRow } from '../store/index.js';
import type { BlobLedgerService } from './blobs.js';
import type { EngineContext } from './context.js';

/** A rendered delivery variant. */
export interface Variant {
  key: string;
  blob: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
}

function toVariant(row: AssetVariantRow): Variant {
  return {
    key: row.key,
    blob: row.blob,
    contentType: row.content_type,
    width: row.width,
    height: row.height,
    bytes: Number(row.bytes),
  };
}

const EVICT_BATCH = 50;

/**
 * The delivery cache in the store: which variants exist, what they take, when each was last served. It is
 * bounded: recording a variant past the bound evicts the least recently used ones, whose blobs go to the
 * ledger's sweep like any other (originals are assets, never variants, so they are never evicted).
 */
export class VariantCacheService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ledger: BlobLedgerService,
  ) {}

  async find(key: string): Promise<Variant | undefined> {
    const row = await this.ctx.read((db) => selectVariant(db, key));
    return row && toVariant(row);
  }

  /** Records a rendered variant and evicts until the cache holds at most `maxBytes`. Returns how many went. */
  async record(variant: Variant, maxBytes: number): Promise<number> {
    const now = this.ctx.now();
    return this.ctx.write(async (tx) => {
      const inserted = await insertVariant(tx, {
        key: variant.key,
        blob: variant.blob,
        content_type: variant.contentType,
        width: variant.width,
        height: variant.height,
        bytes: variant.bytes,
        created_at: now,
        last_used_at: now,
      });
      if (!inserted) return 0;
      let total = await addCacheBytes(tx, variant.bytes);
      let evicted = 0;
      while (total > maxBytes) {
        const oldest = (await selectLeastRecentlyUsed(tx, EVICT_BATCH)).filter((v) => v.key !== variant.key);
        if (oldest.length === 0) break;
        const victims: AssetVariantRow[] = [];
        for (const row of oldest) {
          if (total <= maxBytes) break;
          victims.push(row);
          total -= Number(row.bytes);
        }
        const gone = await deleteVariants(
          tx,
          victims.map((v) => v.key),
        );
        total = await addCacheBytes(tx, -gone.reduce((sum, v) => sum + Number(v.bytes), 0));
        await this.ledger.markUnreferenced(
          tx,
          gone.map((v) => v.blob),
        );
        evicted += gone.length;
      }
      return evicted;
    });
  }

  /** Marks variants served at `at`: the delivery service collects hits and records them in batches. */
  async touch(keys: string[], at = this.ctx.now()): Promise<void> {
    if (keys.length === 0) return;
    await this.ctx.write((tx) => touchVariants(tx, keys, at));
  }
}
