import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect, it } from 'vitest';
import { BLOB_GRACE_MS } from '../../src/engine/index.js';
import type { BlobStore } from '../../src/blobs/index.js';
import { describeEachBlobStore } from '../support/blob-stores.js';
import { manualClock, useEngine } from '../support/engine.js';
import { describeEachStore } from '../support/stores.js';

/**
 * The same bytes stored again while their last reference is being deleted must keep the new upload's blob.
 * Each test interleaves the two sides explicitly, on both databases and both blob stores.
 */
describeEachStore('blob deletion race', (dbTarget) => {
  const openEngine = useEngine(dbTarget);

  describeEachBlobStore('blob deletion race', (blobTarget) => {
    async function setup() {
      const clock = manualClock();
      const { engine, dataDir } = await openEngine({ now: clock.now });
      const { store } = blobTarget.open(dataDir, engine.blobs);
      const vendor = await engine.vendors.create(`v${randomBytes(4).toString('hex')}`);
      const data = randomBytes(4096);
      const upload = (blob: string) =>
        engine.uploads.create(vendor.id, { blob, contentType: 'image/png', bytes: data.length, width: 1, height: 1 });
      const sweep = (deleteObject = (key: string) => store.delete(key)) => engine.blobs.sweep(deleteObject);
      return { clock, engine, store, vendor, data, upload, sweep };
    }

    async function expectBytes(store: BlobStore, key: string, data: Buffer) {
      expect((await store.get(key)).equals(data)).toBe(true);
    }

    it('keeps bytes stored again when their last reference is deleted before the new one commits', async () => {
      const { clock, engine, store, vendor, data, upload, sweep } = await setup();
      const first = await upload((await store.put(data, 'image/png')).key);
      // A second upload of the same bytes: they are already there, so nothing is written.
      const again = await store.put(data, 'image/png');
      expect(again.key).toBe(first.blob);
      // Now the first upload goes (its submission failed), before the second upload's row commits.
      expect(await engine.uploads.discard(vendor.id, [first.id])).toBe(1);
      expect(await sweep()).toBe(0);
      clock.advance(BLOB_GRACE_MS - 1);
      expect(await sweep()).toBe(0);
      const second = await upload(again.key);
      clock.advance(2 * BLOB_GRACE_MS);
      expect(await sweep()).toBe(0);
      await expectBytes(store, second.blob, data);

      // Once nothing refers to the blob any more, a sweep after the grace period does delete it.
      await engine.uploads.discard(vendor.id, [second.id]);
      clock.advance(BLOB_GRACE_MS);
      expect(await sweep()).toBe(1);
      expect(await store.exists(second.blob)).toBe(false);
    });

    it('a writer storing the bytes while the sweep deletes them waits for the sweep, then stores them again', async () => {
      const { clock, engine, store, vendor, data, upload, sweep } = await setup();
      const first = await upload((await store.put(data, 'image/png')).key);
      await engine.uploads.discard(vendor.id, [first.id]);
      clock.advance(BLOB_GRACE_MS);
      let writer: Promise<{ key: string }> | undefined;
      const deleted = await sweep(async (key) => {
        // Inside the sweep's transaction, between finding the blob unreferenced and deleting it.
        writer = store.put(data, 'image/png');
        await store.delete(key);
      });
      expect(deleted).toBe(1);
      const second = await upload((await writer!).key);
      await expectBytes(store, second.blob, data);
      clock.advance(2 * BLOB_GRACE_MS);
      expect(await sweep()).toBe(0);
      await expectBytes(store, second.blob, data);
    });

    it('a streamed upload of bytes whose check is due keeps them; the sweep finds them referenced', async () => {
      const { clock, engine, store, vendor, data, upload, sweep } = await setup();
      const first = await upload((await store.put(data, 'image/png')).key);
      await engine.uploads.discard(vendor.id, [first.id]);
      clock.advance(BLOB_GRACE_MS);
      const streamed = await store.putStream(Readable.from([data.subarray(0, 100), data.subarray(100)]), {
        maxBytes: 10_000,
      });
      clock.advance(BLOB_GRACE_MS / 2);
      expect(await sweep()).toBe(0);
      const second = await upload(streamed.key);
      clock.advance(2 * BLOB_GRACE_MS);
      expect(await sweep()).toBe(0);
      await expectBytes(store, second.blob, data);
    });
  });
});
