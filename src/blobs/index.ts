import type { Config } from '../config.js';
import { FsBlobStore } from './fs-store.js';
import { S3BlobStore, s3Client } from './s3-store.js';
import type { BlobLedger, BlobStore } from './types.js';

export type { BlobLedger, BlobRef, BlobStore, BlobWriter, PutStreamOptions } from './types.js';
export { FsBlobStore } from './fs-store.js';
export { S3BlobStore, s3Client } from './s3-store.js';
export { assertBlobKey, blobKeyOf, payloadTooLarge } from './staging.js';
export {
  SIGNABLE_CONTENT_TYPES,
  loadSigningSecret,
  signBlobUrl,
  verifyBlobUrl,
  type BlobUrlClaims,
  type BlobUrlQuery,
  type VerifiedBlobUrl,
} from './signed-urls.js';

/** The configured blob store: an S3-compatible bucket when PIXQ_S3_BUCKET is set, else the data directory. */
export function openBlobStore(config: Pick<Config, 'dataDir' | 's3'>, ledger: BlobLedger): BlobStore {
  if (config.s3) return new S3BlobStore(s3Client(config.s3), config.s3, config.dataDir, ledger);
  return new FsBlobStore(config.dataDir, ledger);
}
