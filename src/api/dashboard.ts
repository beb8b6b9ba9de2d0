import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { declarePublic } from './auth.js';

/** web/dist, the dashboard's build (`npm run build -w @pixq/web`): two levels up from both src/api and dist/api. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/** The single-page app's own paths (web/src/App.tsx): each answers index.html, and the app routes in the browser. */
export const DASHBOARD_PATHS = ['/', '/jobs', '/jobs/:id', '/upload', '/assets', '/vendors', '/sign-in'] as const;

/**
 * The page may load and call only its own origin: scripts, styles and fetches from 'self', images also from
 * data: and blob: URLs the page makes itself (previews of files about to be uploaded) and from the delivery
 * origin when thumbnails come from a CDN (PIXQ_DELIVERY_URL), never framed.
 */
function contentSecurityPolicy(imageOrigins: string[]): string {
  return [
    "default-src 'self'",
    "connect-src 'self'",
    ["img-src 'self' data: blob:", ...imageOrigins].join(' '),
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * Serves the dashboard: hashed files under /static/ cached for good, index.html (never cached, so a new
 * build is picked up on the next load) at the app's paths only; everything else stays the API's 404. Every
 * route is public: the page holds no data, it asks for the key and calls /v1 with it.
 */
export const dashboardRoutes =
  (dir = DASHBOARD_DIR, imageOrigins: string[] = []): FastifyPluginAsync =>
  async (app) => {
    const csp = contentSecurityPolicy(imageOrigins);
    const indexFile = path.join(dir, 'index.html');
    if (!fs.existsSync(indexFile)) {
      app.log.warn({ dir }, 'dashboard not built (npm run build -w @pixq/web): serving the API without it');
      return;
    }
    // Read once: a build replaced under a running server is served after a restart, like the server's own code.
    const indexHtml = fs.readFileSync(indexFile);
    // Files that hold no data: a page load (a dozen files) must not spend the per-address anonymous budget,
    // which is there for key guesses and keyless API calls.
    declarePublic(app, { meterAnonymous: false });
    await app.register(fastifyStatic, {
      root: path.join(dir, 'static'),
      prefix: '/static/',
      index: false,
      decorateReply: false,
      schemaHide: true,
      // Files only: the folder itself is a 404 like any other unknown path, not a 403 for a directory.
      allowedPath: (pathName) => path.extname(pathName) !== '',
      // File names carry a content hash (vite.config.ts): a changed file is a new name.
      maxAge: '365d',
      immutable: true,
    });
    for (const url of DASHBOARD_PATHS) {
      app.get(url, { schema: { hide: true } }, async (_request, reply) =>
        reply
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-cache')
          .header('content-security-policy', csp)
          .header('x-content-type-options', 'nosniff')
          .send(indexHtml),
      );
    }
  };
