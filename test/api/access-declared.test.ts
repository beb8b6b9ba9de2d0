import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildServer } from '../../src/api/index.js';
import { loadConfig } from '../../src/config.js';
import { openServices } from '../../src/services.js';
import { testEnv } from '../support/api.js';
import { tempDir } from '../support/stores.js';

/** Access control is default-closed: a route that forgets to declare who may call it stops the server. */
describe('routes without a declared access', () => {
  it('refuse to start, naming the route', async () => {
    const services = await openServices(loadConfig(testEnv({ dataDir: tempDir() })), pino({ level: 'silent' }));
    const app = await buildServer(services);
    try {
      app.get('/forgot-access', async () => ({ secret: true }));
      app.get('/declared', { config: { access: 'admin' } }, async () => ({ ok: true }));
      await expect(app.ready()).rejects.toThrow(/GET \/forgot-access(?!.*declared)/);
    } finally {
      await app.close().catch(() => undefined);
      await services.close();
    }
  });

  it('start when every route declares one (swagger UI and the document are public)', async () => {
    const services = await openServices(loadConfig(testEnv({ dataDir: tempDir() })), pino({ level: 'silent' }));
    const app = await buildServer(services);
    try {
      await app.ready();
      const docs = await app.inject({ method: 'GET', url: '/docs/json' });
      expect(docs.statusCode).toBe(200);
      const unknown = await app.inject({ method: 'GET', url: '/no-such-route' });
      expect([unknown.statusCode, unknown.json().code]).toEqual([404, 'not_found']);
    } finally {
      await app.close();
      await services.close();
    }
  });
});
