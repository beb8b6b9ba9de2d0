import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PixqError, validationFailed } from '../errors.js';
import { GROUP_READABLE } from '../file-modes.js';

/** What both blob stores share: key rules, size limits, and the local temp files writes are staged in. */

const KEY_PATTERN = /^[0-9a-f]{64}$/;

/** Throws unless `key` is a lowercase sha256 hex digest; this is what keeps every path inside the store. */
export function assertBlobKey(key: string): void {
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw validationFailed('blob key must be 64 lowercase hex characters', { key: String(key).slice(0, 80) });
  }
}

export function blobKeyOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function payloadTooLarge(maxBytes: number): PixqError {
  return new PixqError('payload_too_large', `payload exceeds the limit of ${maxBytes} bytes`, {
    status: 413,
    details: { maxBytes },
  });
}

export function isMissing(err: unknown): boolean {
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

/** A complete, fsynced temp file and the content address of its bytes. */
export interface StagedFile {
  file: string;
  key: string;
  bytes: number;
}

/**
 * Temp files under one directory (`<dataDir>/blobs/tmp`): every write is staged in one, complete and fsynced,
 * before the store makes it visible under its key. A crash can leave stray temp files, never a partial blob.
 */
export class TempFiles {
  constructor(readonly dir: string) {}

  async stageBuffer(data: Buffer): Promise<StagedFile> {
    const file = await this.newPath();
    try {
      const handle = await open(file, 'wx', GROUP_READABLE);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      await unlinkQuietly(file);
      throw err;
    }
    return { file, key: blobKeyOf(data), bytes: data.length };
  }

  /** Streams `source` into a temp file while hashing it; past `maxBytes` it stops reading and leaves nothing. */
  async stageStream(source: Readable, maxBytes: number): Promise<StagedFile> {
    // The source may fail (client hangs up) while the temp file is being made, before the pipeline listens:
    // keep that error, since a pipeline over an already-failed stream would never settle.
    let early: unknown;
    const ignoreEarly = (err: unknown) => void (early ??= err);
    source.on('error', ignoreEarly);
    let file: string | undefined;
    try {
      file = await this.newPath();
      // Opened before the pipeline starts so the file exists by the time any failure unlinks it; a lazily
      // opening write stream could create it after the cleanup ran.
      const handle = await open(file, 'wx', GROUP_READABLE);
      if (early !== undefined || (source.destroyed && !source.readableEnded)) {
        await handle.close();
        throw early ?? new Error('the upload stream closed before it was read');
      }
      const limiter = new HashingLimiter(maxBytes);
      await pipeline(source, limiter, handle.createWriteStream({ flush: true }));
      return { file, key: limiter.hash.digest('hex'), bytes: limiter.bytes };
    } catch (err) {
      source.destroy();
      if (file) await unlinkQuietly(file);
      throw err;
    } finally {
      source.off('error', ignoreEarly);
    }
  }

  /** Runs `check` on a staged file's bytes; when it throws, the file is discarded and the error passes on. */
  async check(staged: StagedFile, check: ((bytes: Buffer) => Promise<void>) | undefined): Promise<void> {
    if (!check) return;
    try {
      await check(await readFile(staged.file));
    } catch (err) {
      await this.discard(staged);
      throw err;
    }
  }

  async discard(staged: StagedFile): Promise<void> {
    await unlinkQuietly(staged.file);
  }

  /** Removes temp files older than `olderThanMs` (writes that a crashed process left). Returns how many. */
  async removeStale(olderThanMs = 3_600_000, now = Date.now()): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info && now - info.mtimeMs > olderThanMs && (await unlinkQuietly(file))) removed++;
    }
    return removed;
  }

  private async newPath(): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    return path.join(this.dir, `${randomBytes(12).toString('hex')}.part`);
  }
}

export async function unlinkQuietly(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}
