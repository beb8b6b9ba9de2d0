import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { writeFileAtomic } from '../../src/processors/models/model-files.js';
import { OnnxHost } from '../../src/processors/models/onnx-worker.js';
import { openServices, type Services } from '../../src/services.js';
import { jpeg } from '../support/api.js';
import { tempDir } from '../support/stores.js';
import { tinyU2netLike } from '../support/tiny-onnx.js';

/**
 * What pixq leaves on disk and hands to its model process, read as another local user (or a compromised
 * dependency) would: the database readable by its owner only, blobs and model files never writable or readable
 * beyond the owner's group, and no secret in the model process's environment.
 */
const mode = (file: string) => fs.statSync(file).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

describe('file modes and the model process environment', () => {
  const opened: Services[] = [];
  const umask = process.umask(0o022); // the usual default, whatever the test runner inherited
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });
  afterEach(() => void process.umask(umask));

  it('creates the SQLite database 0600 and blobs 0640 (or stricter), and makes an older 0644 database 0600', async () => {
    const dataDir = tempDir();
    const services = await openServices(loadConfig({ PIXQ_DATA_DIR: dataDir, PIXQ_LOG_LEVEL: 'silent' }));
    opened.push(services);
    const vendor = await services.engine.vendors.create('modes'); // a write: the WAL and its index exist
    expect(vendor.id).toBeTruthy();
    const put = await services.blobs.put(await jpeg(20, 20), 'image/jpeg');
    const streamed = await services.blobs.putStream(Readable.from([await jpeg(30, 30)]), { maxBytes: 1 << 20 });
    const files = ['pixq.db', 'pixq.db-wal', 'pixq.db-shm'].map((f) => path.join(dataDir, f));
    for (const file of files) expect([file, octal(mode(file) & 0o077)]).toEqual([file, '00']);
    for (const key of [put.key, streamed.key]) {
      const file = blobFile(dataDir, key);
      expect([file, octal(mode(file) & 0o137)]).toEqual([file, '00']);
    }
    await services.close();
    opened.pop();

    fs.chmodSync(files[0], 0o644); // a database an older pixq made
    opened.push(await openServices(loadConfig({ PIXQ_DATA_DIR: dataDir, PIXQ_LOG_LEVEL: 'silent' })));
    expect(octal(mode(files[0]))).toBe('0600');
  });

  it('writes model files 0640 (or stricter)', async () => {
    const file = path.join(tempDir(), 'models', 'tiny.onnx');
    await writeFileAtomic(file, tinyU2netLike(32));
    expect(octal(mode(file) & 0o137)).toBe('00');
  });

  it("gives the model process none of the server's secrets", async () => {
    const secrets = {
      PIXQ_ADMIN_KEY: 'admin-secret-0123456789',
      PIXQ_SIGNING_SECRET: 'signing-secret-0123456789',
      ANTHROPIC_API_KEY: 'sk-ant-secret',
      AWS_SECRET_ACCESS_KEY: 'aws-secret',
      DATABASE_URL: 'postgres://user:password@db/pixq',
    };
    const saved = Object.fromEntries(Object.keys(secrets).map((k) => [k, process.env[k]]));
    Object.assign(process.env, secrets);
    const file = path.join(tempDir(), 'tiny.onnx');
    fs.writeFileSync(file, tinyU2netLike(32));
    let host: OnnxHost | undefined;
    try {
      host = await OnnxHost.open(file, { provider: 'cpu', threads: 1 });
      const environ = fs.readFileSync(`/proc/${host.pid}/environ`, 'utf8').split('\0').filter(Boolean);
      const names = environ.map((line) => line.slice(0, line.indexOf('=')));
      for (const name of Object.keys(secrets)) expect(names).not.toContain(name);
      for (const value of Object.values(secrets)) expect(environ.join('\n')).not.toContain(value);
      // It still works: the environment it needs is there.
      expect(host.inputNames.length).toBeGreaterThan(0);
    } finally {
      await host?.close();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

function blobFile(dataDir: string, key: string): string {
  const found = walk(path.join(dataDir, 'blobs')).find((f) => path.basename(f).startsWith(key));
  if (!found) throw new Error(`no file for blob ${key}`);
  return found;
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? walk(full) : [full];
  });
}
