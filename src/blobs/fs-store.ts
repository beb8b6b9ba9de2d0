import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { notFound } from '../errors.js';
import { assertBlobKey, blobKeyOf, isMissing, TempFiles, unlinkQuietly, type StagedFile } from './staging.js';
import type { BlobLedger, BlobRef, BlobStore, PutStreamOptions } from './types.js';

/**
 * Content-addressed blob store on the local filesystem: `<dataDir>/blobs/ab/cd/<sha256>`.
 * Every write is staged in `<dataDir>/blobs/tmp`, fsynced and then renamed into place, so a blob's final
 * name only ever points at complete content. The content type passed to `put` is not stored: the same bytes
 * always get the same key, and the type travels with the job record and the signed URL instead.
 * Every key is touched in the ledger before its bytes appear (see `BlobLedger`).
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  private readonly temp: TempFiles;

  constructor(
    dataDir: string,
    private readonly ledger: BlobLedger,
  ) {
    this.root = path.join(path.resolve(dataDir), 'blobs');
    this.temp = new TempFiles(path.join(this.root, 'tmp'));
  }

  /** Absolute path of a blob; validates the key first so the result can never leave the store. */
  pathFor(key: string): string {
    assertBlobKey(key);
    return path.join(this.root, key.slice(0, 2), key.slice(2, 4), key);
  }

  async put(data: Buffer, _contentType: string): Promise<BlobRef> {
    const key = blobKeyOf(data);
    await this.ledger.touch(key);
    if (!(await this.exists(key))) await this.commit(await this.temp.stageBuffer(data));
    return { key, bytes: data.length };
  }

  async putStream(source: Readable, opts: PutStreamOptions): Promise<BlobRef> {
    const staged = await this.temp.stageStream(source, opts.maxBytes);
    await this.temp.check(staged, opts.check);
    try {
      await this.ledger.touch(staged.key);
      if (await this.exists(staged.key)) await this.temp.discard(staged);
      else await this.commit(staged);
    } catch (err) {
      await this.temp.discard(staged);
      throw err;
    }
    return { key: staged.key, bytes: staged.bytes };
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

  /** Files are served by pixq itself, through its signed URLs. */
  async directUrl(): Promise<undefined> {
    return undefined;
  }

  removeStaleTemp(): Promise<number> {
    return this.temp.removeStale();
  }

  private async commit(staged: StagedFile): Promise<void> {
    const final = this.pathFor(staged.key);
    const dir = path.dirname(final);
    try {
      await mkdir(dir, { recursive: true });
      await rename(staged.file, final);
    } catch (err) {
      await this.temp.discard(staged);
      throw err;
    }
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
