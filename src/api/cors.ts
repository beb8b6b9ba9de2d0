import type { FastifyInstance } from 'fastify';

const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
const ALLOWED_HEADERS = 'authorization, x-api-key, content-type, idempotency-key, last-event-id';
// What a browser script may read besides the CORS-safelisted headers: the budgets, the wait and the new job.
const EXPOSED_HEADERS = 'ratelimit, ratelimit-policy, retry-after, location';
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for the configured origins (PIXQ_CORS_ORIGINS): an allowed origin gets its own name back on every
 * answer, errors included, and a preflight (OPTIONS with Access-Control-Request-Method) is answered 204
 * before authentication, as browsers send it without credentials. Other origins get no CORS headers, so the
 * browser keeps their scripts from reading the answers. Written as a hook rather than @fastify/cors because
 * it is this small and needs no new dependency. Requests carry keys in headers, never cookies, so
 * credentials are never allowed.
 */
export function registerCors(app: FastifyInstance, origins: string[]) {
  if (origins.length === 0) return;
  const anyOrigin = origins.includes('*');
  const allowed = new Set(origins);
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !(anyOrigin || allowed.has(origin))) return;
    reply.header('access-control-allow-origin', anyOrigin ? '*' : origin);
    reply.header('vary', 'Origin');
    reply.header('access-control-expose-headers', EXPOSED_HEADERS);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
      return reply
        .code(204)
        .header('access-control-allow-methods', ALLOWED_METHODS)
        .header('access-control-allow-headers', ALLOWED_HEADERS)
        .header('access-control-max-age', PREFLIGHT_MAX_AGE_S)
        .send();
    }
  });
}
