import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { FsBlobStore, S3BlobStore, s3Client, type BlobLedger, type BlobStore } from '../../src/blobs/index.js';
import { startS3Server, type S3Server } from './s3.js';

/**
 * Runs a suite once per blob store: the file store, and the S3 store on an s3rver started for the block.
 * `open` makes a store over a data directory and a ledger; `contents` lists what it holds: blob keys, and
 * `tmp/<name>` for each staged temp file.
 */
export interface BlobStoreTarget {
  name: 'fs' | 's3';
  open(dataDir: string, ledger: BlobLedger, options?: { presign?: boolean }): OpenedBlobStore;
}

export interface OpenedBlobStore {
  store: BlobStore;
  contents(): Promise<string[]>;
}

async function tempFiles(dataDir: string): Promise<string[]> {
  const names = await readdir(path.join(dataDir, 'blobs', 'tmp')).catch(() => []);
  return names.map((n) => `tmp/${n}`);
}

const fsTarget: BlobStoreTarget = {
  name: 'fs',
  open(dataDir, ledger) {
    const store = new FsBlobStore(dataDir, ledger);
    const contents = async () => {
      const entries = await readdir(store.root, { recursive: true, withFileTypes: true }).catch(() => []);
      const blobs = entries.filter((e) => e.isFile() && path.basename(e.parentPath) !== 'tmp').map((e) => e.name);
      return [...blobs, ...(await tempFiles(dataDir))].sort();
    };
    return { store, contents };
  },
};

function s3Target(server: () => S3Server): BlobStoreTarget {
  return {
    name: 's3',
    open(dataDir, ledger, options = {}) {
      // A prefix per store keeps the tests of one file apart in their shared bucket.
      const prefix = `t${randomBytes(6).toString('hex')}/`;
      const config = { ...server().config, prefix, presign: options.presign ?? true };
      const store = new S3BlobStore(s3Client(config), config, dataDir, ledger);
      const contents = async () => {
        const keys = (await server().keys()).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
        return [...keys, ...(await tempFiles(dataDir))].sort();
      };
      return { store, contents };
    },
  };
}

export function describeEachBlobStore(title: string, body: (target: BlobStoreTarget) => void) {
  describe(`${title} [fs]`, () => body(fsTarget));
  describe(`${title} [s3]`, () => {
    let server: S3Server | undefined;
    beforeAll(async () => {
      server = await startS3Server();
    });
    afterAll(async () => {
      await server?.stop();
    });
    body(s3Target(() => server!));
  });
}
