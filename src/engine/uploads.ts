import { notFound } from '../errors.js';
import { newId } from '../ids.js';
import type { UploadRow } from '../store/index.js';
import { deleteVendorUploads } from '../store/sql/delete-finished-jobs.js';
import { insertUpload, selectUpload, selectUploadedType } from '../store/sql/uploads.js';
import { releaseStorage, reserveStorage } from '../store/sql/storage.js';
import { storageQuotaExceeded } from './assets.js';
import type { BlobLedgerService } from './blobs.js';
import type { EngineContext } from './context.js';

export interface Upload {
  id: string;
  vendorId: string;
  blob: string;
  contentType: string;
  bytes: number;
  width: number;
  height: number;
  createdAt: number;
}

function toUpload(row: UploadRow): Upload {
  return {
    id: row.id,
    vendorId: row.vendor_id,
    blob: row.blob,
    contentType: row.content_type,
    bytes: row.bytes,
    width: row.width,
    height: row.height,
    createdAt: row.created_at,
  };
}

/** Images a vendor uploaded once to use in several jobs. */
export class UploadService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ledger: BlobLedgerService,
    private readonly storage: { defaultMaxBytes: number | null },
  ) {}

  /** Records an upload whose bytes are stored, charging them to the vendor's storage quota. */
  async create(vendorId: string, image: Omit<Upload, 'id' | 'vendorId' | 'createdAt'>): Promise<Upload> {
    const row: UploadRow = {
      id: newId(),
      vendor_id: vendorId,
      blob: image.blob,
      content_type: image.contentType,
      bytes: image.bytes,
      width: image.width,
      height: image.height,
      created_at: this.ctx.now(),
    };
    await this.ctx.write(async (tx) => {
      if ((await reserveStorage(tx, vendorId, image.bytes, this.storage.defaultMaxBytes)) === undefined) {
        throw storageQuotaExceeded(image.bytes);
      }
      await insertUpload(tx, row);
    });
    return toUpload(row);
  }

  async get(id: string, vendorId: string): Promise<Upload> {
    const row = await this.ctx.read((db) => selectUpload(db, id, vendorId));
    if (!row) throw notFound('upload');
    return toUpload(row);
  }

  /** The content type and size `vendorId` uploaded `blob` with; undefined when no upload of it is left. */
  async typeOf(vendorId: string, blob: string): Promise<{ contentType: string; bytes: number } | undefined> {
    const row = await this.ctx.read((db) => selectUploadedType(db, vendorId, blob));
    return row && { contentType: row.content_type, bytes: row.bytes };
  }

  /**
   * Deletes uploads of `vendorId` that turned out to be unwanted (their submission failed); each blob nothing
   * else refers to goes to the ledger's sweep. Returns how many uploads were deleted.
   */
  async discard(vendorId: string, ids: string[]): Promise<number> {
    return this.ctx.write(async (tx) => {
      const { deleted, orphanBlobs, freed } = await deleteVendorUploads(tx, vendorId, ids);
      await this.ledger.markUnreferenced(tx, orphanBlobs);
      await releaseStorage(tx, freed);
      return deleted;
    });
  }
}
