import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR, DASHBOARD_PATHS, dashboardRoutes } from '../../src/api/dashboard.js';
import { ADMIN_KEY, startApi, type ApiHarness } from '../support/api.js';
import { sqliteTarget, tempDir } from '../support/stores.js';

/** The dashboard's files over real HTTP (no browser): what is cached for how long, and what stays the API's. */
describe('the dashboard served at /', () => {
  const apis: ApiHarness[] = [];
  afterAll(async () => {
    for (const api of apis) await api.close();
  });
  const start = async (env: Record<string, string> = {}) => {
    const api = await startApi(sqliteTarget, env);
    apis.push(api);
    return api;
  };

  it('answers index.html, never cached and with a same-origin CSP, at the app paths only', async () => {
    expect(fs.existsSync(path.join(DASHBOARD_DIR, 'index.html')), 'web/dist is built by npm install').toBe(true);
    const api = await start();
    for (const url of ['/', '/jobs', '/jobs/01JOBID', '/upload', '/assets', '/vendors', '/sign-in']) {
      const res = await api.call('GET', url);
      expect([url, res.status, res.contentType]).toEqual([url, 200, 'text/html; charset=utf-8']);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toMatch(/(^|; )default-src 'self'(;|$)/);
      expect(csp).toMatch(/(^|; )connect-src 'self'(;|$)/);
      expect(res.raw.toString()).toContain('<div id="root">');
    }
    for (const url of ['/jobs/1/2', '/index.html', '/vendorsx', '/favicon.ico', '/static/', '/static/missing.js']) {
      const res = await api.call('GET', url);
      expect([url, res.status, res.body?.code]).toEqual([url, 404, 'not_found']);
    }
  });

  it('serves the hashed assets the page names, cached for a year and immutable', async () => {
    const api = await start();
    const html = (await api.call('GET', '/')).raw.toString();
    const assets = [...html.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThanOrEqual(2); // the script and the stylesheet
    for (const asset of assets) {
      const res = await api.call('GET', asset);
      expect([asset, res.status]).toEqual([asset, 200]);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.contentType).toMatch(asset.endsWith('.js') ? /javascript/ : /text\/css/);
    }
  });

  it('leaves /v1 and the health probes as they were, and needs no key', async () => {
    const api = await start();
    expect((await api.call('GET', '/v1/jobs')).status).toBe(401);
    expect((await api.call('GET', '/v1/vendors', { key: ADMIN_KEY })).status).toBe(200);
    expect((await api.call('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const routes = api.app.routeAccess.filter(
      (r) => r.url.startsWith('/static') || (DASHBOARD_PATHS as readonly string[]).includes(r.url),
    );
    expect(routes.length).toBeGreaterThan(0);
    expect(routes.every((r) => r.access === 'public')).toBe(true);
  });

  it("does not spend the per-address anonymous budget on the dashboard's files; the API's anonymous calls still do", async () => {
    const api = await start({ PIXQ_RATE_ANONYMOUS: '2/1h' });
    const html = (await api.call('GET', '/')).raw.toString();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
    // A dashboard load and several reloads: far more files than the budget.
    for (let load = 0; load < 3; load++) {
      for (const url of ['/', '/jobs', ...assets])
        expect([url, (await api.call('GET', url)).status]).toEqual([url, 200]);
    }
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await api.call('GET', '/v1/jobs')).status);
    expect(statuses).toEqual([401, 401, 429]);
  });

  it('is off with PIXQ_DASHBOARD=0: / is the API 404 problem', async () => {
    const api = await start({ PIXQ_DASHBOARD: '0' });
    for (const url of ['/', '/jobs', '/static/index.js']) {
      const res = await api.call('GET', url);
      expect([url, res.status, res.body?.code]).toEqual([url, 404, 'not_found']);
    }
    expect((await api.call('GET', '/v1/vendors', { key: ADMIN_KEY })).status).toBe(200);
  });

  it('without a build, starts with a warning and serves no dashboard', async () => {
    const logged: { msg: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.push(JSON.parse(String(chunk)) as { msg: string });
        done();
      },
    });
    const app = Fastify({ loggerInstance: pino({ level: 'warn' }, sink) });
    try {
      await app.register(dashboardRoutes(path.join(tempDir(), 'no-build')));
      await app.ready();
      expect((await app.inject({ method: 'GET', url: '/' })).statusCode).toBe(404);
      expect(logged.map((l) => l.msg)).toEqual([expect.stringMatching(/dashboard not built/)]);
    } finally {
      await app.close();
    }
  });
});
