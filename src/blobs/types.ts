import type { Readable } from 'node:stream';

/** What a blob store returns for a stored object. Keys are content addresses (sha256 hex). */
export interface BlobRef {
  key: string;
  bytes: number;
}

/** The part of a blob store a job handler may use: it can only add objects. */
export interface BlobWriter {
  put(data: Buffer, contentType: string): Promise<BlobRef>;
}

/**
 * A content-addressed object store. The local filesystem store is the default; the interface stays small
 * so that an S3-compatible store can implement it later.
 */
export interface BlobStore extends BlobWriter {
  /** Streams `source` into the store; rejects (and leaves nothing behind) past `maxBytes`. */
  putStream(source: Readable, opts: { maxBytes: number }): Promise<BlobRef>;
  get(key: string): Promise<Buffer>;
  stream(key: string): Readable;
  exists(key: string): Promise<boolean>;
  delete(key: string): Promise<void>;
}
