import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { notFound, PixqError, validationFailed } from '../errors.js';
import type { BlobRef, BlobStore } from './types.js';

const KEY_PATTERN = /^[0-9a-f]{64}$/;

/** Throws unless `key` is a lowercase sha256 hex digest; this is what keeps every path inside the store. */
export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw validationFailed('blob key must be 64 lowercase hex characters', { key: String(key).slice(0, 80) });
  }
}

export function payloadTooLarge(maxBytes: number): PixqError {
  return new PixqError('payload_too_large', `payload exceeds the limit of ${maxBytes} bytes`, {
    status: 413,
    details: { maxBytes },
  });
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Hashes and counts bytes as they pass, failing the pipeline as soon as the limit is crossed. */
class HashingLimiter extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) return done(payloadTooLarge(this.maxBytes));
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * Content-addressed blob store on the local filesystem: `<dataDir>/blobs/ab/cd/<sha256>`.
 * Every write goes to `<dataDir>/blobs/tmp` first, is fsynced and then renamed into place, so a blob's final
 * name only ever points at complete content; a crash can leave stray temp files, never a partial blob.
 * The content type passed to `put` is not stored: the same bytes always get the same key, and the type travels
 * with the job record and the signed URL instead.
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  private readonly tmpDir: string;

  constructor(dataDir: string) {
    this.root = path.join(path.resolve(dataDir), 'blobs');
    this.tmpDir = path.join(this.root, 'tmp');
  }

  /** Absolute path of a blob; validates the key first so the result can never leave the store. */
  pathFor(key: string): string {
    assertBlobKey(key);
    return path.join(this.root, key.slice(0, 2), key.slice(2, 4), key);
  }

  async put(data: Buffer, _contentType: string): Promise<BlobRef> {
    const key = createHash('sha256').update(data).digest('hex');
    if (await this.exists(key)) return { key, bytes: data.length };
    const tmp = await this.newTempPath();
    try {
      const handle = await open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.commit(tmp, key);
    } catch (err) {
      await unlinkQuietly(tmp);
      throw err;
    }
    return { key, bytes: data.length };
  }

  async putStream(source: Readable, opts: { maxBytes: number }): Promise<BlobRef> {
    // The source may fail (client hangs up) while the temp file is being made, before the pipeline listens:
    // keep that error, since a pipeline over an already-failed stream would never settle.
    let early: unknown;
    const ignoreEarly = (err: unknown) => void (early ??= err);
    source.on('error', ignoreEarly);
    let tmp: string | undefined;
    try {
      tmp = await this.newTempPath();
      // Opened before the pipeline starts so the file exists by the time any failure unlinks it; a lazily
      // opening write stream could create it after the cleanup ran.
      const handle = await open(tmp, 'wx', 0o644);
      if (early !== undefined || (source.destroyed && !source.readableEnded)) {
        await handle.close();
        throw early ?? new Error('the upload stream closed before it was read');
      }
      const limiter = new HashingLimiter(opts.maxBytes);
      await pipeline(source, limiter, handle.createWriteStream({ flush: true }));
      const key = limiter.hash.digest('hex');
      await this.commit(tmp, key);
      return { key, bytes: limiter.bytes };
    } catch (err) {
      source.destroy();
      if (tmp) await unlinkQuietly(tmp);
      throw err;
    } finally {
      source.off('error', ignoreEarly);
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathFor(key));
    } catch (err) {
      throw isMissing(err) ? notFound('blob') : err;
    }
  }

  /** A missing blob surfaces as a `not_found` PixqError on the stream, not as a raw ENOENT. */
  stream(key: string): Readable {
    return Readable.from(readChunks(this.pathFor(key)), { objectMode: false });
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathFor(key))).isFile();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await unlinkQuietly(this.pathFor(key));
  }

  /** Removes temp files a crashed process left behind; call at start-up. Returns how many were removed. */
  async removeStaleTemp(olderThanMs = 3_600_000, now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const info = await stat(file).catch(() => undefined);
      if (info && now - info.mtimeMs > olderThanMs && (await unlinkQuietly(file))) removed++;
    }
    return removed;
  }

  private async newTempPath(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return path.join(this.tmpDir, `${randomBytes(12).toString('hex')}.part`);
  }

  /** Renaming over an existing blob is harmless: same key means same bytes. */
  private async commit(tmp: string, key: string): Promise<void> {
    const final = this.pathFor(key);
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true });
    await rename(tmp, final);
    await syncDir(dir);
  }
}

async function* readChunks(file: string): AsyncGenerator<Buffer> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw isMissing(err) ? notFound('blob') : err;
  }
  // The read stream owns the handle from here and closes it on end, error or early destroy.
  yield* handle.createReadStream();
}

/** Makes the rename itself durable, so a blob a job has reported cannot vanish after a power loss. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function unlinkQuietly(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
