import { isAssetPath } from '@pixq/client/schemas';
import { PixqError, notFound, validationFailed } from '../errors.js';
import { deleteAssetRow, selectAsset, selectAssetPage, selectAssetsOfJobs, upsertAsset } from '../store/sql/assets.js';
import { selectJob } from '../store/sql/change-job-state.js';
import { selectJobOutputs } from '../store/sql/read-jobs.js';
import { releaseStorage, reserveStorage } from '../store/sql/storage.js';
import { lockVendorById } from '../store/sql/vendors.js';
import type { Dialect, Tx } from '../store/index.js';
import type { BlobLedgerService } from './blobs.js';
import type { EngineContext } from './context.js';
import { toAsset } from './rows.js';
import type { Asset } from './types.js';
import { checkActive } from './vendors.js';

/** The bytes and facts of an image about to become an asset. */
export interface AssetImage {
  blob: string;
  contentType: string;
  width: number;
  height: number;
  bytes: number;
}

export interface AssetPage {
  assets: Asset[];
  /** The path to pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

/**
 * An asset's version: the first hex digits of its blob's SHA-256. It changes exactly when the path gets new
 * bytes, and a path deleted and written again with other bytes never repeats an old version, so a URL that
 * carries it (as `cachebuster`) names one content for ever and may be cached for a year.
 */
export function assetVersion(blob: string): string {
  return blob.slice(0, 12);
}

export function checkAssetPath(path: string): string {
  if (!isAssetPath(path)) {
    throw validationFailed(
      'an asset path is 1-255 of A-Z a-z 0-9 . _ - and /, with no empty, "." or ".." segment and no leading /',
      { path: path.slice(0, 300) },
    );
  }
  return path;
}

export function storageQuotaExceeded(needed: number): PixqError {
  return new PixqError(
    'storage_quota_exceeded',
    `storing ${needed} more bytes would pass this vendor's storage quota`,
    {
      status: 403,
      details: { neededBytes: needed },
    },
  );
}

/**
 * Writes an asset in `tx`: the vendor's row is locked first (so its storage count and its assets change one
 * writer at a time), the difference in bytes is charged to its storage quota, and the bytes the path held before
 * go to the ledger's sweep. Throws `storage_quota_exceeded` (nothing written) when the quota refuses.
 */
export async function writeAsset(
  tx: Tx,
  dialect: Dialect,
  ledger: BlobLedgerService,
  write: {
    vendorId: string;
    path: string;
    image: AssetImage;
    jobId: string | null;
    now: number;
    defaultMaxBytes: number | null;
  },
): Promise<Asset> {
  const { vendorId, path, image, now } = write;
  await lockVendorById(tx, dialect, vendorId);
  const previous = await selectAsset(tx, vendorId, path);
  const delta = image.bytes - Number(previous?.bytes ?? 0);
  if ((await reserveStorage(tx, vendorId, delta, write.defaultMaxBytes)) === undefined) {
    throw storageQuotaExceeded(delta);
  }
  const row = await upsertAsset(tx, {
    vendor_id: vendorId,
    path,
    blob: image.blob,
    content_type: image.contentType,
    width: image.width,
    height: image.height,
    bytes: image.bytes,
    version: assetVersion(image.blob),
    job_id: write.jobId,
    created_at: now,
    updated_at: now,
  });
  if (previous && previous.blob !== image.blob) await ledger.markUnreferenced(tx, [previous.blob]);
  return toAsset(row);
}

/** A vendor's named, durable images: written by publishing a job's output or directly, read, listed, deleted. */
export class AssetService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ledger: BlobLedgerService,
    private readonly storage: { defaultMaxBytes: number | null },
  ) {}

  /** Stores an image (already in the blob store and checked) at `path`, replacing what was there. */
  async put(vendorId: string, path: string, image: AssetImage): Promise<Asset> {
    checkAssetPath(path);
    return this.write(vendorId, path, image, null);
  }

  /** Publishes a succeeded job's first output at `path` (default: the job's publish path, else its id). */
  async publishJob(vendorId: string, jobId: string, path?: string): Promise<Asset> {
    const job = await this.ctx.read((db) => selectJob(db, jobId, vendorId));
    if (!job) throw notFound('job');
    const [output] = await this.ctx.read((db) => selectJobOutputs(db, jobId));
    if (job.state !== 'succeeded' || !output) {
      throw new PixqError('invalid_state', `job ${jobId} has no output to publish (state ${job.state})`, {
        status: 409,
        details: { state: job.state },
      });
    }
    const target = checkAssetPath(path ?? job.publish_path ?? job.id);
    const image = {
      blob: output.blob,
      contentType: output.content_type,
      width: output.width,
      height: output.height,
      bytes: Number(output.bytes),
    };
    return this.write(vendorId, target, image, jobId);
  }

  async get(vendorId: string, path: string): Promise<Asset> {
    const row = await this.ctx.read((db) => selectAsset(db, vendorId, path));
    if (!row) throw notFound('asset');
    return toAsset(row);
  }

  async list(vendorId: string, query: { prefix?: string; limit: number; cursor?: string }): Promise<AssetPage> {
    // One more than asked: whether it exists says if there is a next page.
    const rows = await this.ctx.read((db) =>
      selectAssetPage(db, { vendorId, prefix: query.prefix ?? '', after: query.cursor, limit: query.limit + 1 }),
    );
    const assets = rows.slice(0, query.limit).map(toAsset);
    return { assets, nextCursor: rows.length > query.limit ? assets[assets.length - 1].path : null };
  }

  /** Deletes an asset; its bytes go to the ledger's sweep, its size back to the vendor's storage quota. */
  async delete(vendorId: string, path: string): Promise<void> {
    await this.ctx.write(async (tx) => {
      await lockVendorById(tx, this.ctx.store.dialect, vendorId);
      const row = await deleteAssetRow(tx, vendorId, path);
      if (!row) throw notFound('asset');
      await releaseStorage(tx, [{ vendorId, bytes: Number(row.bytes) }]);
      await this.ledger.markUnreferenced(tx, [row.blob]);
    });
  }

  /** The assets that hold these jobs' outputs now. */
  async ofJobs(jobIds: string[]): Promise<Asset[]> {
    const rows = await this.ctx.read((db) => selectAssetsOfJobs(db, jobIds));
    return rows.map(toAsset);
  }

  private write(vendorId: string, path: string, image: AssetImage, jobId: string | null): Promise<Asset> {
    return this.ctx.write(async (tx) => {
      const vendor = await lockVendorById(tx, this.ctx.store.dialect, vendorId);
      if (!vendor) throw notFound('vendor');
      checkActive(vendor);
      return writeAsset(tx, this.ctx.store.dialect, this.ledger, {
        vendorId,
        path,
        image,
        jobId,
        now: this.ctx.now(),
        defaultMaxBytes: this.storage.defaultMaxBytes,
      });
    });
  }
}
