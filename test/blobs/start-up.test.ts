import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openServices } from '../../src/services.js';
import { testEnv } from '../support/api.js';
import { dropDatabase, describeEachStore } from '../support/stores.js';

describeEachStore('blob store start-up', (target) => {
  it('removes the temp files of writes a crashed process left, keeping recent ones', async () => {
    const location = await target.fresh();
    const tmp = path.join(location.dataDir, 'blobs', 'tmp');
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, 'crashed.part'), 'half an upload');
    await writeFile(path.join(tmp, 'in-flight.part'), 'another process is writing this');
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(path.join(tmp, 'crashed.part'), past, past);
    const services = await openServices(loadConfig(testEnv(location)));
    try {
      expect(await readdir(tmp)).toEqual(['in-flight.part']);
    } finally {
      await services.close();
      await dropDatabase(location.databaseUrl);
    }
  });
});
