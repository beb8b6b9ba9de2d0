import type { Readable } from 'node:stream';

/** What a blob store returns for a stored object. Keys are content addresses (sha256 hex). */
export interface BlobRef {
  key: string;
  bytes: number;
}

export interface PutStreamOptions {
  maxBytes: number;
  check?: (bytes: Buffer) => Promise<void>;
}

/** The part of a blob store a job handler may use: it can only add objects. */
export interface BlobWriter {
  put(data: Buffer, contentType: string): Promise<BlobRef>;
}

/**
 * Where a store records a key before its bytes appear under it (the engine's blob ledger, `engine.blobs`):
 * once `touch` has resolved, no sweep deletes that blob for a grace period, and a sweep that was deleting it
 * has finished, so the store can trust what it then finds under the key.
 */
export interface BlobLedger {
  touch(key: string): Promise<void>;
}

/**
 * A content-addressed object store: the local filesystem (`FsBlobStore`) or an S3-compatible bucket
 * (`S3BlobStore`). Only the ledger's sweep deletes blobs that jobs or uploads may share.
 */
export interface BlobStore extends BlobWriter {
  /**
   * Streams `source` into the store; rejects (and leaves nothing behind) past `maxBytes`, or when `check`,
   * given the complete bytes before they are stored under their key, throws: what is refused is never stored.
   */
  putStream(source: Readable, opts: PutStreamOptions): Promise<BlobRef>;
  get(key: string): Promise<Buffer>;
  stream(key: string): Readable;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * A URL the client can fetch the bytes from directly, served with `contentType` until `expiresAt`, or
   * undefined when downloads go through pixq.
   */
  directUrl(key: string, contentType: string, expiresAt: number): Promise<string | undefined>;
  /** Removes the temp files of writes a crashed process left behind (run at start-up). */
  removeStaleTemp(): Promise<number>;
}
