export type { BlobRef, BlobStore, BlobWriter } from './types.js';
export { FsBlobStore, assertBlobKey, payloadTooLarge } from './fs-store.js';
export {
  SIGNABLE_CONTENT_TYPES,
  loadSigningSecret,
  signBlobUrl,
  verifyBlobPath,
  verifyBlobUrl,
  type BlobUrlClaims,
  type BlobUrlQuery,
  type VerifiedBlobUrl,
} from './signed-urls.js';
