import { timingSafeEqual } from 'node:crypto';
import { signDeliveryPath } from '@pixq/client/delivery';
import type { SigningPair } from '../engine/index.js';

/**
 * imgproxy's URL signature (base64url of HMAC-SHA256 keyed with the hex key, over the hex salt and the path
 * after the signature), with each vendor's own pair. The signing itself is the client package's, so the URLs
 * the SDK builds and the ones the server checks cannot drift apart.
 */

/** Whether `signature` signs `signedPath` with any of `pairs`; every pair is compared, in constant time. */
export function verifyPath(pairs: SigningPair[], signature: string, signedPath: string): boolean {
  const given = Buffer.from(signature, 'base64url');
  // Decoding is lenient, so a signature is only one if it is exactly the base64url of 32 bytes.
  if (given.length !== 32 || given.toString('base64url') !== signature) return false;
  let valid = false;
  for (const pair of pairs) {
    valid = timingSafeEqual(given, Buffer.from(signDeliveryPath(pair, signedPath), 'base64url')) || valid;
  }
  return valid;
}
