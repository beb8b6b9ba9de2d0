import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { jpeg, useApi } from '../support/api.js';
import { spawnPixq } from '../support/processes.js';
import { sqliteTarget, tempDir } from '../support/stores.js';

/** `pixq submit` as a real process against a real server with a worker, on a real folder. */
describe('pixq submit', () => {
  // Two files per bulk request, so four inputs take two requests.
  const api = useApi(sqliteTarget, { PIXQ_MAX_BULK_FILES: '2' });

  async function submit(args: string[], key: string) {
    const run = spawnPixq(['submit', ...args], { PIXQ_URL: api().base, PIXQ_KEY: key });
    const code = await run.exited;
    return { code, lines: run.logs.map((l) => String(l.msg)) };
  }

  it('writes outputs, names the corrupt file in the summary with a non-zero exit, and resumes', async () => {
    const { key } = await api().vendor();
    const stop = await api().startWorker();
    try {
      const folder = tempDir();
      for (const name of ['a.jpg', 'b.jpg', 'c.jpg']) fs.writeFileSync(path.join(folder, name), await jpeg(40, 30));
      const good = await jpeg(40, 30);
      fs.writeFileSync(path.join(folder, 'corrupt.jpg'), good.subarray(0, 200)); // a JPEG cut short
      fs.writeFileSync(path.join(folder, 'notes.txt'), 'not an image, not picked from a folder');

      const first = await submit(
        [folder, '--type', 'transform', '--options', '{"format":"png","resize":{"width":20}}'],
        key,
      );
      expect(first.code, first.lines.join('\n')).toBe(1);
      for (const name of ['a', 'b', 'c']) {
        const meta = await sharp(path.join(folder, `${name}.jpg.pixq.png`)).metadata();
        expect({ format: meta.format, width: meta.width }).toEqual({ format: 'png', width: 20 });
      }
      expect(fs.readdirSync(folder).filter((n) => n.startsWith('corrupt.jpg.pixq.'))).toEqual([]);
      const summary = first.lines.find((l) => l.startsWith('done in'));
      expect(summary).toMatch(/3 succeeded, 1 failed, 0 skipped/);
      const failure = first.lines.find((l) => l.includes('failed:'));
      expect(failure).toContain(path.join(folder, 'corrupt.jpg'));
      expect(failure).toMatch(/: (invalid_image|unsupported_media_type) /);
      // Not a terminal: plain progress lines per batch, two batches for four files at two per request.
      expect(first.lines.some((l) => /^batch 1\/2 .*done, .*failed, .*\/s, ETA/.test(l))).toBe(true);

      const second = await submit(
        [path.join(folder, '*.jpg'), '--type', 'transform', '--options', '{"format":"png","resize":{"width":20}}'],
        key,
      );
      expect(second.code, second.lines.join('\n')).toBe(1);
      expect(second.lines).toContain('skipping 3 of 4 inputs: their outputs exist');
      expect(second.lines.find((l) => l.startsWith('done in'))).toMatch(/0 succeeded, 1 failed, 3 skipped/);

      fs.rmSync(path.join(folder, 'corrupt.jpg'));
      const third = await submit([folder, '--type', 'transform', '--options', '{"format":"png"}'], key);
      expect(third.code, third.lines.join('\n')).toBe(0);
      expect(third.lines.find((l) => l.startsWith('done in'))).toMatch(/0 succeeded, 0 failed, 3 skipped/);
    } finally {
      await stop();
    }
  }, 300_000); // three CLI processes, each loading the whole program from source

  it('writes to --out, publishes with --publish, and exits 2 on a usage mistake', async () => {
    const { key } = await api().vendor();
    const stop = await api().startWorker();
    try {
      const folder = tempDir();
      const out = path.join(tempDir(), 'results');
      fs.writeFileSync(path.join(folder, 'x.png'), await jpeg(30, 30));
      const run = await submit(
        [path.join(folder, 'x.png'), '--type', 'transform', '--out', out, '--publish', 'catalog/'],
        key,
      );
      expect(run.code, run.lines.join('\n')).toBe(0);
      expect(fs.readdirSync(out), run.lines.join('\n')).toEqual(['x.png.pixq.jpg']);
      const assets = (await api().call('GET', '/v1/assets?prefix=catalog/', { key })).body.assets;
      expect(assets).toHaveLength(1);
      expect(run.lines).toContain(`  published: ${path.join(folder, 'x.png')}: ${assets[0].url}`);
      expect((await submit([folder], key)).code).toBe(2);
    } finally {
      await stop();
    }
  }, 300_000);
});
