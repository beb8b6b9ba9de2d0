import { createHash, randomBytes } from 'node:crypto';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeEach, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blobs/index.js';
import { PixqError } from '../../src/errors.js';
import { describeEachBlobStore, type OpenedBlobStore } from '../support/blob-stores.js';
import { useEngine } from '../support/engine.js';
import { rejection } from '../support/errors.js';
import { sqliteTarget } from '../support/stores.js';

/** The contract every blob store keeps, run against the file store and the S3 store (on s3rver). */

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function chunked(data: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size));
  return Readable.from(chunks);
}

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

describeEachBlobStore('blob store contract', (target) => {
  const openEngine = useEngine(sqliteTarget);
  let dataDir: string;
  let opened: OpenedBlobStore;
  let store: BlobStore;

  beforeEach(async () => {
    const { engine, dataDir: dir } = await openEngine();
    dataDir = dir;
    opened = target.open(dataDir, engine.blobs);
    store = opened.store;
  });

  it('stores bytes under their sha256 and reads them back whole and streamed', async () => {
    const data = randomBytes(5000);
    const ref = await store.put(data, 'image/png');
    expect(ref).toEqual({ key: sha256(data), bytes: data.length });
    expect(await opened.contents()).toEqual([ref.key]);
    expect((await store.get(ref.key)).equals(data)).toBe(true);
    expect((await drain(store.stream(ref.key))).equals(data)).toBe(true);
    expect(await store.exists(ref.key)).toBe(true);
  });

  it('stores identical content once', async () => {
    const data = randomBytes(300);
    const a = await store.put(data, 'image/png');
    const b = await store.put(Buffer.from(data), 'image/jpeg');
    const c = await store.putStream(chunked(data, 7), { maxBytes: 1000 });
    expect(new Set([a.key, b.key, c.key]).size).toBe(1);
    expect(await opened.contents()).toEqual([a.key]);
  });

  it('putStream hashes while streaming and accepts exactly maxBytes', async () => {
    const data = randomBytes(64 * 1024 + 3);
    const ref = await store.putStream(chunked(data, 4096), { maxBytes: data.length });
    expect(ref).toEqual({ key: sha256(data), bytes: data.length });
    expect((await store.get(ref.key)).equals(data)).toBe(true);
    expect(await opened.contents()).toEqual([ref.key]);
  });

  it('putStream sends a file larger than one part as a multipart upload, intact', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 17);
    const ref = await store.putStream(chunked(data, 64 * 1024), { maxBytes: data.length });
    expect(ref.key).toBe(sha256(data));
    expect(sha256(await drain(store.stream(ref.key)))).toBe(ref.key);
  });

  it('putStream past maxBytes rejects with payload_too_large and leaves nothing behind', async () => {
    const data = randomBytes(50_000);
    const err = await rejection(store.putStream(chunked(data, 1000), { maxBytes: data.length - 1 }));
    expect([err.code, err.status]).toEqual(['payload_too_large', 413]);
    expect(await opened.contents()).toEqual([]);
    expect(await store.exists(sha256(data))).toBe(false);
  });

  it('putStream stops reading the source once the limit is crossed', async () => {
    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 1024;
        this.push(Buffer.alloc(1024, 1));
      },
    });
    const err = await rejection(store.putStream(endless, { maxBytes: 10_000 }));
    expect(err.code).toBe('payload_too_large');
    expect(endless.destroyed).toBe(true);
    expect(produced).toBeLessThan(200_000);
    expect(await opened.contents()).toEqual([]);
  });

  it('a failing source leaves nothing behind and passes its error on', async () => {
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(100));
    setImmediate(() => source.destroy(new Error('client went away')));
    await expect(store.putStream(source, { maxBytes: 1000 })).rejects.toThrow('client went away');
    expect(await opened.contents()).toEqual([]);
  });

  it('a source that fails before any byte arrives leaves nothing behind either', async () => {
    const source = new Readable({ read() {} });
    const pending = store.putStream(source, { maxBytes: 1000 });
    source.destroy(new Error('reset before the first byte'));
    await expect(pending).rejects.toThrow('reset before the first byte');
    expect(await opened.contents()).toEqual([]);
  });

  it('delete removes a blob and is idempotent', async () => {
    const ref = await store.put(randomBytes(10), 'image/png');
    await store.delete(ref.key);
    expect(await store.exists(ref.key)).toBe(false);
    await store.delete(ref.key);
    expect(await opened.contents()).toEqual([]);
  });

  it('a missing blob is not_found for get and stream', async () => {
    const key = sha256(Buffer.from('never stored'));
    expect((await rejection(store.get(key))).code).toBe('not_found');
    expect((await rejection(drain(store.stream(key)))).code).toBe('not_found');
  });

  it.each([
    '../../../../etc/passwd',
    '..',
    `${'a'.repeat(63)}/`,
    `ab/cd/${'a'.repeat(64)}`,
    'A'.repeat(64),
    `${'a'.repeat(64)}\0`,
    'a'.repeat(65),
    '',
  ])('refuses key %j before touching the storage', async (key) => {
    // A file planted where a traversal would land proves the refusal is not just "file not found".
    await writeFile(path.join(dataDir, 'secret'), 'do not serve');
    expect((await rejection(store.get(key))).code).toBe('validation_failed');
    expect((await rejection(store.exists(key))).code).toBe('validation_failed');
    expect((await rejection(store.delete(key))).code).toBe('validation_failed');
    expect(() => store.stream(key)).toThrow(PixqError);
    expect((await stat(path.join(dataDir, 'secret'))).isFile()).toBe(true);
  });

  it('removeStaleTemp clears old leftovers of a crashed write but keeps fresh ones', async () => {
    const tmp = path.join(dataDir, 'blobs', 'tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, 'old.part'), 'x');
    await writeFile(path.join(tmp, 'new.part'), 'x');
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(path.join(tmp, 'old.part'), past, past);
    expect(await store.removeStaleTemp()).toBe(1);
    expect(await opened.contents()).toEqual(['tmp/new.part']);
  });

  if (target.name === 'fs') {
    it('serves downloads through pixq: no direct URL', async () => {
      const ref = await store.put(randomBytes(10), 'image/png');
      expect(await store.directUrl(ref.key, 'image/png', Date.now() + 60_000)).toBeUndefined();
    });
  } else {
    it('hands out a presigned GET that serves the bytes with the signed content type, or none when presigning is off', async () => {
      const data = randomBytes(2000);
      const ref = await store.put(data, 'image/webp');
      const url = await store.directUrl(ref.key, 'image/webp', Date.now() + 60_000);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*X-Amz-Signature=/);
      const res = await fetch(url!);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/webp');
      expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
      const { engine } = await openEngine();
      const privateStore = target.open(dataDir, engine.blobs, { presign: false }).store;
      expect(await privateStore.directUrl(ref.key, 'image/webp', Date.now() + 60_000)).toBeUndefined();
    });
  }
});
