export { ACCEPTED_CONTENT_TYPES, probeDecode, sniffImage, type ImageFormat, type SniffedImage } from './sniff.js';
export {
  downloadImage,
  checkUrlTarget,
  guardedAgent,
  assertLiteralAllowed,
  parseUrl,
  discard,
  urlFetchFailed,
  urlNotAllowed,
  type DownloadOptions,
  type DownloadedImage,
  type Resolver,
} from './fetch-url.js';
export { forbiddenRange, isAllowlisted, parseAllowlist, type Allowlist } from './address-policy.js';
