import crypto from 'node:crypto';
import type { FastifyContextConfig, FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Engine, Vendor } from '../engine/index.js';
import { API_KEY_LIMITS } from '../engine/limits.js';
import { PixqError } from '../errors.js';
import { verifyEventToken } from './event-tokens.js';

/** Who is calling: a vendor (by its API key), the operator (admin key), or nobody. */
export type Caller =
  { kind: 'vendor'; vendor: Vendor; eventScope?: EventScope } | { kind: 'admin' } | { kind: 'anonymous' };

/** What an event token (rather than a key) lets its holder read: that vendor's events, maybe of one job or batch. */
export interface EventScope {
  jobId?: string;
  batchId?: string;
}

/** What a route requires; `any` means a vendor or the admin. */
export type Access = 'public' | 'vendor' | 'admin' | 'any';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** A health probe: answered without resolving the caller or spending budget, so it works in an outage. */
    probe?: boolean;
    /** The route also accepts an event token in `?token=` in place of a key (read-only event routes). */
    eventTokens?: boolean;
    /** Compatibility routes: a caller that sends no key acts as PIXQ_COMPAT_ANONYMOUS_VENDOR, when that is set. */
    keylessVendor?: boolean;
  }
  interface FastifyRequest {
    caller: Caller;
  }
  interface FastifyInstance {
    /** Every route with the access it declares, hidden ones (Swagger UI, the document) included. */
    readonly routeAccess: { method: string; url: string; access: Access | undefined }[];
  }
}

export const unauthorized = () =>
  new PixqError('unauthorized', 'a valid API key is required (Authorization: Bearer <key> or X-API-Key)', {
    status: 401,
  });

function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string' && /^bearer\s+/i.test(header)) return header.replace(/^bearer\s+/i, '').trim();
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' ? apiKey.trim() : undefined;
}

const digest = (secret: string) => crypto.createHash('sha256').update(secret).digest();

/**
 * Resolves the caller of every request from its key (unknown and revoked keys count as anonymous), or on
 * routes that take them, from an event token (a forged or expired one is a 401). On routes marked
 * `keylessVendor`, a request with no key at all acts as `anonymousVendor` (an operator's trust decision for old
 * clients that cannot send one); it spends that vendor's budgets like any of its requests.
 */
export function registerCallerResolution(
  app: FastifyInstance,
  engine: Engine,
  adminKey: string | undefined,
  eventTokenKey: Buffer,
  anonymousVendor?: string,
) {
  // Compared as digests: equal lengths for timingSafeEqual, and the admin key's is computed once.
  const adminDigest = adminKey ? digest(adminKey) : undefined;
  app.decorateRequest('caller', { getter: () => ({ kind: 'anonymous' }) as Caller });
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.probe) return;
    const key = presentedKey(request);
    const token = (request.query as Record<string, unknown> | undefined)?.token;
    const keyless =
      key === undefined && anonymousVendor !== undefined && request.routeOptions.config.keylessVendor === true;
    const caller =
      key === undefined && typeof token === 'string' && request.routeOptions.config.eventTokens
        ? await tokenCaller(engine, token, eventTokenKey)
        : keyless
          ? await boundVendor(engine, anonymousVendor)
          : await identify(engine, adminDigest, key);
    Object.defineProperty(request, 'caller', { value: caller, enumerable: true });
  });
}

/**
 * Access is default-closed: a route that does not declare `config.access` stops the server from starting,
 * naming the route, instead of silently being public. Checked once every plugin is loaded, because a
 * plugin's own onRoute hooks (see `declarePublic`) run after this one. Must be added before any route.
 */
export function requireDeclaredAccess(app: FastifyInstance) {
  const routes: RouteOptions[] = [];
  app.decorate('routeAccess', {
    getter: () =>
      routes.flatMap((r) => [r.method].flat().map((method) => ({ method, url: r.url, access: r.config?.access }))),
  });
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  app.addHook('onReady', async () => {
    const undeclared = routes.filter((r) => r.config?.access === undefined).map((r) => `${String(r.method)} ${r.url}`);
    if (undeclared.length > 0) {
      throw new Error(`routes without config.access (public, vendor, admin or any): ${undeclared.join(', ')}`);
    }
  });
}

/**
 * Declares every route added inside `app` (a plugin's own context) public, with `config` added: for third-party
 * plugins such as Swagger UI, and the dashboard's files.
 */
export function declarePublic(app: FastifyInstance, config: Omit<FastifyContextConfig, 'access'> = {}) {
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, ...config, access: 'public' };
  });
}

/** Enforces each route's `access`: no valid key is 401; the wrong kind of key is 403. */
export function registerAccessControl(app: FastifyInstance) {
  app.addHook('onRequest', async (request) => {
    // No route matched: the not-found handler answers. Every real route declares access (see above).
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    const caller = request.caller;
    if (access === 'public') return;
    if (caller.kind === 'anonymous') throw unauthorized();
    if (access === 'admin' && caller.kind !== 'admin') {
      throw new PixqError('forbidden', 'this route needs the admin key', { status: 403 });
    }
    if (access === 'vendor' && caller.kind !== 'vendor') {
      throw new PixqError('forbidden', 'this route needs a vendor API key', { status: 403 });
    }
  });
}

async function boundVendor(engine: Engine, name: string): Promise<Caller> {
  const vendor = await engine.vendors.get(name).catch((err: unknown) => {
    if (err instanceof PixqError && err.code === 'not_found') return undefined;
    throw err;
  });
  return vendor ? { kind: 'vendor', vendor } : { kind: 'anonymous' };
}

async function identify(engine: Engine, adminDigest: Buffer | undefined, key: string | undefined): Promise<Caller> {
  if (!key || key.length > API_KEY_LIMITS.maxLength) return { kind: 'anonymous' };
  if (adminDigest && crypto.timingSafeEqual(digest(key), adminDigest)) return { kind: 'admin' };
  const vendor = await engine.apiKeys.authenticate(key);
  return vendor ? { kind: 'vendor', vendor } : { kind: 'anonymous' };
}

async function tokenCaller(engine: Engine, token: string, key: Buffer): Promise<Caller> {
  const claims = verifyEventToken(token, key);
  const vendor = await engine.vendors.get(claims.vendorId).catch(() => undefined);
  if (vendor?.id !== claims.vendorId)
    throw new PixqError('invalid_token', 'the event token names no vendor', { status: 401 });
  return { kind: 'vendor', vendor, eventScope: { jobId: claims.jobId, batchId: claims.batchId } };
}

/**
 * Whose jobs a request may see and change: a vendor's key only its own (naming another vendor is 403, and
 * another vendor's job stays a 404 because every query is scoped by this id); the admin key every vendor's,
 * or only those of the vendor it names.
 */
export function jobScope(request: FastifyRequest, vendorId?: string): string | undefined {
  const caller = request.caller;
  if (caller.kind === 'admin') return vendorId;
  const own = vendorOf(request).id;
  if (vendorId !== undefined && vendorId !== own) {
    throw new PixqError('forbidden', 'only the admin key may name a vendor (vendorId)', { status: 403 });
  }
  return own;
}

/** The calling vendor; routes with access `vendor` always have one. */
export function vendorOf(request: FastifyRequest): Vendor {
  if (request.caller.kind !== 'vendor') throw unauthorized();
  return request.caller.vendor;
}
