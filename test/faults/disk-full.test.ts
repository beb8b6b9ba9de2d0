import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { jpeg } from '../support/api.js';
import { stopAll, waitUntil } from '../support/processes.js';
import { tempDir } from '../support/stores.js';
import { createVendor, GENEROUS_RATES, spawnApi, type ApiProcess } from './harness.js';

/**
 * SQLite on a full disk: a small tmpfs as the data directory, filled up by a file while `pixq start` runs.
 * Mounting needs root; elsewhere the test is skipped with the reason printed.
 */
const TMPFS_MB = 24;
const skipReason = process.getuid?.() !== 0 ? 'mounting a tmpfs as the SQLite data dir needs root' : undefined;
if (skipReason) console.warn(`skipping the disk-full fault test: ${skipReason}`);

function integrity(dataDir: string): string {
  const db = new BetterSqlite3(path.join(dataDir, 'pixq.db'), { readonly: true });
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** Writes `file` until the filesystem refuses (ENOSPC); returns the bytes written. */
function fillDisk(file: string): number {
  const fd = fs.openSync(file, 'a');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  try {
    for (;;) written += fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

describe.skipIf(Boolean(skipReason))('faults: SQLite on a full disk', () => {
  it(
    'intake answers 507 storage_full, reads still work, the database stays intact, and service resumes once space is freed',
    { timeout: 300_000 },
    async () => {
      const dataDir = tempDir();
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_MB}m`, 'tmpfs', dataDir]);
      let api: ApiProcess | undefined;
      try {
        api = await spawnApi(
          {
            PIXQ_DATA_DIR: dataDir,
            PIXQ_ENABLE_NOOP: '1',
            PIXQ_WORKER_CONCURRENCY: 'noop=4',
            PIXQ_POLL_MS: '100',
            PIXQ_BACKOFF_MS: '0',
            PIXQ_LOG_LEVEL: 'warn',
            ...GENEROUS_RATES,
          },
          'start',
        );
        const { key } = await createVendor(api, 'full-disk');
        const call = api.call;

        // Jobs running when the disk fills: their outcome cannot be written until space is back.
        const running = await call('POST', '/v1/jobs/bulk', {
          key,
          json: { jobs: Array.from({ length: 4 }, () => ({ type: 'noop', options: { ms: 1500 } })) },
        });
        expect(running.status).toBe(202);
        await waitUntil(
          async () => (await call('GET', `/v1/batches/${running.body.batchId}`, { key })).body.counts.running === 4,
          30_000,
          'the jobs to run',
        );

        const filler = path.join(dataDir, 'filler');
        const filled = fillDisk(filler);
        // SQLite reuses its WAL and the file's free pages, so writes fail only once they need new space: submit
        // until intake refuses. Every answer is an acceptance or storage_full, never a 500.
        const answers: number[] = [];
        let refusal;
        for (let i = 0; i < 2000 && !refusal; i++) {
          const res = await call('POST', '/v1/jobs/bulk', {
            key,
            json: { jobs: Array.from({ length: 50 }, () => ({ type: 'noop', options: { ms: 0 } })) },
          });
          answers.push(res.status);
          if (res.status !== 202) refusal = res;
        }
        expect(refusal, `no refusal after ${answers.length} submissions`).toBeDefined();
        expect({ status: refusal!.status, code: refusal!.body.code }).toEqual({ status: 507, code: 'storage_full' });
        expect(refusal!.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(refusal!.headers.get('content-type')).toMatch(/^application\/problem\+json/);

        // Uploads need blob space: refused the same way.
        const form = new FormData();
        form.append('image', new Blob([await jpeg(400, 300)], { type: 'image/jpeg' }), 'photo.jpg');
        const upload = await call('POST', '/v1/uploads', { key, body: form });
        expect({ status: upload.status, code: upload.body?.code }).toEqual({ status: 507, code: 'storage_full' });

        // Reads work without a write (the rate-limit counter cannot be written), and the file is intact.
        const read = await call('GET', `/v1/jobs/${running.body.jobIds[0]}`, { key });
        expect(read.status).toBe(200);
        expect((await call('GET', '/v1/jobs?limit=5', { key })).status).toBe(200);
        expect(integrity(dataDir)).toBe('ok');

        fs.rmSync(filler);
        await waitUntil(
          async () =>
            (await call('POST', '/v1/jobs', { key, json: { type: 'noop', options: { ms: 0 } } })).status === 202,
          30_000,
          'intake to accept again',
        );
        const accepted = answers.filter((s) => s === 202).length * 50 + 4 + 1;
        await waitUntil(
          async () => {
            const totals = (await call('GET', '/v1/stats', { key })).body?.totals;
            return totals?.succeeded === accepted;
          },
          90_000,
          `all ${accepted} accepted jobs to succeed`,
        );
        expect((await call('GET', '/v1/stats', { key })).body.totals).toEqual({ succeeded: accepted });
        expect(api.process.child.exitCode).toBeNull();
        console.log(
          `disk full: filler ${Math.round(filled / 1024)} KB; ${answers.length - 1} bulk submissions accepted after the fill before the first 507; ${accepted} jobs succeeded after space was freed`,
        );
      } finally {
        if (api) await stopAll([api.process]);
        if (fs.existsSync(path.join(dataDir, 'pixq.db'))) expect(integrity(dataDir)).toBe('ok');
        execFileSync('umount', [dataDir]);
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );
});
