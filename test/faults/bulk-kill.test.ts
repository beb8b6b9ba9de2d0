import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { openEngine, type Engine } from '../../src/engine/index.js';
import { DEFAULT_OPTIONS } from '../support/engine.js';
import { stopAll, waitUntil } from '../support/processes.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';
import { createVendor, GENEROUS_RATES, spawnApi } from './harness.js';

const FILES = 100;
const BOUNDARY = 'pixq-fault-boundary';

/** A distinct small JPEG per index, so every file is its own blob. */
function photo(i: number) {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: { r: i, g: 255 - i, b: (i * 7) % 256 } } })
    .jpeg()
    .toBuffer();
}

function filePart(i: number, bytes: Buffer) {
  const head = `--${BOUNDARY}\r\ncontent-disposition: form-data; name="image"; filename="p${i}.jpg"\r\ncontent-type: image/jpeg\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), bytes, Buffer.from('\r\n')]);
}

/** Committed blob files (temp files excluded) under the data dir's blob store. */
function blobKeys(dataDir: string): string[] {
  const root = path.join(dataDir, 'blobs');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.parentPath.endsWith(`${path.sep}tmp`))
    .map((e) => e.name);
}

/**
 * Blobs something accounts for: a row refers to them, or the blob ledger holds them for its sweep (a file
 * stored just before the kill, whose upload row never committed, is deleted by the sweep after its grace).
 */
async function accountedBlobs(engine: Engine) {
  const uploads = await engine.store.db.selectFrom('uploads').select('blob').execute();
  const outputs = await engine.store.db.selectFrom('job_outputs').select('blob').execute();
  const ledger = await engine.store.db
    .selectFrom('blobs')
    .select('key as blob')
    .where('sweep_after', 'is not', null)
    .execute();
  return new Set([...uploads, ...outputs, ...ledger].map((r) => r.blob));
}

describeEachStore('faults: the API SIGKILLed during a 100-file bulk submission', (target) => {
  it('leaves no job of the batch and no blob file without a row', { timeout: 420_000 }, async () => {
    const location = await target.fresh();
    const env = {
      PIXQ_DATA_DIR: location.dataDir,
      DATABASE_URL: location.databaseUrl,
      PIXQ_ENABLE_NOOP: '1',
      PIXQ_LOG_LEVEL: 'warn',
      ...GENEROUS_RATES,
    };
    const api = await spawnApi(env);
    const engine = await openEngine(location, DEFAULT_OPTIONS);
    try {
      const { id: vendorId, key } = await createVendor(api, 'bulk-kill');
      const photos = await Promise.all(Array.from({ length: FILES }, (_, i) => photo(i)));

      // The body goes out part by part; once the API has stored some of the files, it is killed.
      const request = http.request(`${api.base}/v1/jobs/bulk`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      });
      request.on('error', () => undefined); // the server dies mid-request
      const write = (chunk: Buffer | string) => new Promise<void>((resolve) => request.write(chunk, () => resolve()));
      await write(`--${BOUNDARY}\r\ncontent-disposition: form-data; name="type"\r\n\r\ntransform\r\n`);
      for (let i = 0; i < FILES / 2; i++) await write(filePart(i, photos[i]));
      const stored = async () =>
        Number(
          (
            await engine.store.db
              .selectFrom('uploads')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('vendor_id', '=', vendorId)
              .executeTakeFirst()
          )?.n ?? 0,
        );
      await waitUntil(async () => (await stored()) >= 10, 60_000, 'the API to store some of the files');
      api.process.child.kill('SIGKILL');
      await api.process.exited;
      request.destroy();

      const jobs = await engine.store.db.selectFrom('jobs').select('id').where('vendor_id', '=', vendorId).execute();
      expect(jobs).toEqual([]);
      const accounted = await accountedBlobs(engine);
      const orphans = blobKeys(location.dataDir).filter((k) => !accounted.has(k));
      expect(orphans).toEqual([]);
      const leftUploads = await stored();
      const tmp = path.join(location.dataDir, 'blobs', 'tmp');
      const tempFiles = fs.existsSync(tmp) ? fs.readdirSync(tmp).length : 0;
      console.log(
        `bulk kill [${target.name}]: killed after ${leftUploads} of ${FILES} files were stored; 0 jobs, 0 orphan blobs; ${leftUploads} uploads left for retention; ${tempFiles} temp files`,
      );

      // A new API process on the same store takes the whole submission.
      const again = await spawnApi(env);
      try {
        const form = new FormData();
        form.append('type', 'transform');
        for (const [i, bytes] of photos.entries())
          form.append('image', new Blob([bytes], { type: 'image/jpeg' }), `p${i}.jpg`);
        const res = await again.call('POST', '/v1/jobs/bulk', { key, body: form });
        expect({ status: res.status, count: res.body?.count }, JSON.stringify(res.body)).toEqual({
          status: 202,
          count: FILES,
        });
      } finally {
        await stopAll([again.process]);
      }
    } finally {
      await stopAll([api.process]);
      await engine.close();
      await dropDatabase(location.databaseUrl);
    }
  });
});
