import { expect, it } from 'vitest';
import { ADMIN_KEY, openSse } from '../support/api.js';
import { describeEachStore, dropDatabase } from '../support/stores.js';
import { apiReady, spawnPixq, waitUntil } from '../support/processes.js';

describeEachStore('shutdown of a process serving the API', (target) => {
  it(
    'SIGTERM with an event stream open: the stream ends with a final comment and the process exits 0',
    { timeout: 300_000 },
    async () => {
      const location = await target.fresh();
      const pixq = spawnPixq(['start'], {
        PIXQ_DATA_DIR: location.dataDir,
        DATABASE_URL: location.databaseUrl,
        PIXQ_ADMIN_KEY: ADMIN_KEY,
        PORT: '0',
        HOST: '127.0.0.1',
        PIXQ_SSE_HEARTBEAT_MS: '60000',
      });
      try {
        const base = await apiReady(pixq);
        const created = await fetch(`${base}/v1/vendors`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'acme' }),
        });
        expect(created.status).toBe(201);
        const { apiKey } = (await created.json()) as { apiKey: string };
        const stream = await openSse({ base }, '/v1/events', apiKey);
        expect(stream.status).toBe(200);

        pixq.child.kill('SIGTERM');
        let ended = false;
        void stream.ended.then(() => (ended = true));
        await waitUntil(() => ended, 60_000, 'the server to end the event stream');
        expect(stream.comments.some((c) => /shutting down/.test(c))).toBe(true);
        await waitUntil(() => pixq.child.exitCode !== null, 60_000, 'the process to exit');
        expect(pixq.child.exitCode).toBe(0);
        stream.close();
      } finally {
        if (pixq.child.exitCode === null) pixq.child.kill('SIGKILL');
        await pixq.exited;
        await dropDatabase(location.databaseUrl);
      }
    },
  );
});
