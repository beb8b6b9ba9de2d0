import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Config } from '../config.js';
import { notFound } from '../errors.js';
import { assertBlobKey, blobKeyOf, TempFiles, type StagedFile } from './staging.js';
import type { BlobLedger, BlobRef, BlobStore, PutStreamOptions } from './types.js';

/** S3 refuses presigned URLs valid for longer than a week. */
const MAX_PRESIGN_S = 7 * 24 * 3600;
/** Parts of a multipart upload; files up to this size go up in one PutObject. */
const PART_BYTES = 8 * 1024 * 1024;

/** The SDK client for pixq's S3 settings; credentials come from the SDK's own chain (env, profile, role). */
export function s3Client(config: S3Config): S3Client {
  const options: S3ClientConfig = {
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    // Checksums only where S3 requires them: S3-compatible servers (MinIO, Ceph, s3rver) do not all accept
    // the SDK's default trailing CRC32 on every upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (config.endpoint) options.endpoint = config.endpoint;
  return new S3Client(options);
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * Content-addressed blob store in an S3-compatible bucket: object `<prefix><sha256>`. Uploads are staged in a
 * local temp file while they are hashed (the key is the hash, known only at the end), then sent with
 * lib-storage's Upload, which switches to a multipart upload for large files. Every key is touched in the
 * ledger before its bytes are sent (see `BlobLedger`). Objects are stored as application/octet-stream; the
 * content type a download is served with comes from pixq's signed URL.
 */
export class S3BlobStore implements BlobStore {
  private readonly temp: TempFiles;
  private readonly prefix: string;

  constructor(
    private readonly client: S3Client,
    private readonly config: S3Config,
    dataDir: string,
    private readonly ledger: BlobLedger,
  ) {
    this.temp = new TempFiles(path.join(path.resolve(dataDir), 'blobs', 'tmp'));
    const trimmed = config.prefix.replace(/^\/+|\/+$/g, '');
    this.prefix = trimmed === '' ? '' : `${trimmed}/`;
  }

  /** The object key of a blob; validates the blob key first. */
  objectKey(key: string): string {
    assertBlobKey(key);
    return this.prefix + key;
  }

  async put(data: Buffer, _contentType: string): Promise<BlobRef> {
    const key = blobKeyOf(data);
    await this.ledger.touch(key);
    if (!(await this.exists(key))) {
      await this.client.send(
        new PutObjectCommand({ ...this.target(key), Body: data, ContentType: 'application/octet-stream' }),
      );
    }
    return { key, bytes: data.length };
  }

  async putStream(source: Readable, opts: PutStreamOptions): Promise<BlobRef> {
    const staged = await this.temp.stageStream(source, opts.maxBytes);
    await this.temp.check(staged, opts.check);
    try {
      await this.ledger.touch(staged.key);
      if (!(await this.exists(staged.key))) await this.upload(staged);
    } finally {
      await this.temp.discard(staged);
    }
    return { key: staged.key, bytes: staged.bytes };
  }

  async get(key: string): Promise<Buffer> {
    const body = await this.open(key);
    return Buffer.from(await body.transformToByteArray());
  }

  /** A missing blob surfaces as a `not_found` PixqError on the stream. */
  stream(key: string): Readable {
    this.objectKey(key);
    const open = () => this.open(key);
    return Readable.from(
      (async function* () {
        yield* (await open()) as unknown as Readable;
      })(),
      { objectMode: false },
    );
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand(this.target(key)));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand(this.target(key)));
  }

  /** A presigned GET (unless PIXQ_S3_PRESIGN=0), answering with `contentType` until `expiresAt`. */
  async directUrl(key: string, contentType: string, expiresAt: number): Promise<string | undefined> {
    if (!this.config.presign) return undefined;
    const expiresIn = Math.min(MAX_PRESIGN_S, Math.max(1, Math.floor((expiresAt - Date.now()) / 1000)));
    const command = new GetObjectCommand({ ...this.target(key), ResponseContentType: contentType });
    return getSignedUrl(this.client, command, { expiresIn });
  }

  removeStaleTemp(): Promise<number> {
    return this.temp.removeStale();
  }

  private target(key: string) {
    return { Bucket: this.config.bucket, Key: this.objectKey(key) };
  }

  private async open(key: string) {
    try {
      const { Body } = await this.client.send(new GetObjectCommand(this.target(key)));
      if (!Body) throw notFound('blob');
      return Body;
    } catch (err) {
      throw isNotFound(err) ? notFound('blob') : err;
    }
  }

  private async upload(staged: StagedFile): Promise<void> {
    const upload = new Upload({
      client: this.client,
      params: {
        ...this.target(staged.key),
        Body: createReadStream(staged.file),
        ContentType: 'application/octet-stream',
      },
      partSize: PART_BYTES,
      queueSize: 2,
    });
    await upload.done();
  }
}
