import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../src/blobs/index.js';
import { PixqError } from '../../src/errors.js';
import { rejection } from '../support/errors.js';

let dataDir: string;
let store: FsBlobStore;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'pixq-blobs-'));
  store = new FsBlobStore(dataDir);
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Every regular file under the store, relative to it. */
async function listFiles(dir = store.root): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(store.root, path.join(e.parentPath, e.name)));
}

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

describe('FsBlobStore', () => {
  it('stores bytes under their sha256 in fan-out directories and reads them back', async () => {
    const data = randomBytes(5000);
    const ref = await store.put(data, 'image/png');
    expect(ref).toEqual({ key: sha256(data), bytes: data.length });
    expect(await listFiles()).toEqual([path.join(ref.key.slice(0, 2), ref.key.slice(2, 4), ref.key)]);
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
    expect(await listFiles()).toHaveLength(1);
  });

  it('putStream hashes while streaming and accepts exactly maxBytes', async () => {
    const data = randomBytes(64 * 1024 + 3);
    const ref = await store.putStream(chunked(data, 4096), { maxBytes: data.length });
    expect(ref).toEqual({ key: sha256(data), bytes: data.length });
    expect((await store.get(ref.key)).equals(data)).toBe(true);
  });

  it('putStream past maxBytes rejects with payload_too_large and leaves no file behind', async () => {
    const data = randomBytes(50_000);
    const err = await rejection(store.putStream(chunked(data, 1000), { maxBytes: data.length - 1 }));
    expect(err.code).toBe('payload_too_large');
    expect(err.status).toBe(413);
    expect(await listFiles()).toEqual([]);
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
    expect(await listFiles()).toEqual([]);
  });

  it('a failing source leaves no file behind and passes its error on', async () => {
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(100));
    setImmediate(() => source.destroy(new Error('client went away')));
    await expect(store.putStream(source, { maxBytes: 1000 })).rejects.toThrow('client went away');
    expect(await listFiles()).toEqual([]);
  });

  it('a source that fails before any byte arrives leaves no file behind either', async () => {
    const source = new Readable({ read() {} });
    const pending = store.putStream(source, { maxBytes: 1000 });
    source.destroy(new Error('reset before the first byte'));
    await expect(pending).rejects.toThrow('reset before the first byte');
    expect(await listFiles()).toEqual([]);
  });

  it('delete removes a blob and is idempotent', async () => {
    const ref = await store.put(randomBytes(10), 'image/png');
    await store.delete(ref.key);
    expect(await store.exists(ref.key)).toBe(false);
    await store.delete(ref.key);
    expect(await listFiles()).toEqual([]);
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
  ])('refuses key %j before touching the filesystem', async (key) => {
    // A file planted where a traversal would land proves the refusal is not just "file not found".
    await writeFile(path.join(dataDir, 'secret'), 'do not serve');
    expect((await rejection(store.get(key))).code).toBe('validation_failed');
    expect((await rejection(store.exists(key))).code).toBe('validation_failed');
    expect((await rejection(store.delete(key))).code).toBe('validation_failed');
    expect(() => store.stream(key)).toThrow(PixqError);
    expect((await stat(path.join(dataDir, 'secret'))).isFile()).toBe(true);
  });

  it('removeStaleTemp clears old leftovers from a crash but keeps fresh ones', async () => {
    const tmp = path.join(store.root, 'tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, 'old.part'), 'x');
    await writeFile(path.join(tmp, 'new.part'), 'x');
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(path.join(tmp, 'old.part'), past, past);
    expect(await store.removeStaleTemp(3_600_000)).toBe(1);
    expect(await readdir(tmp)).toEqual(['new.part']);
  });
});
