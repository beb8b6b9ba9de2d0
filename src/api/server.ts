import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { loadSigningSecret } from '../blobs/index.js';
import type { Services } from '../services.js';
import { declarePublic, registerAccessControl, registerCallerResolution, requireDeclaredAccess } from './auth.js';
import { registerCors } from './cors.js';
import { dashboardRoutes } from './dashboard.js';
import type { ApiDeps } from './deps.js';
import { eventTokenKey } from './event-tokens.js';
import { registerCompat } from './compat/index.js';
import { registerFailedSubmissionCleanup } from './multipart.js';
import { registerJsonParser } from './json-body.js';
import { clientErrorHandler, frameworkErrorHandler, idleTimeoutHandler, registerProblemHandlers } from './problems.js';
import { jobOptionsTransform } from './openapi.js';
import { RateLimiter } from './rate-limit.js';
import { adminRoutes } from './routes/admin.js';
import { eventRoutes } from './routes/events.js';
import { jobRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { statusRoutes } from './routes/status.js';
import { submissionRoutes } from './routes/submissions.js';
import { templateRoutes } from './routes/templates.js';
import { assetRoutes } from './routes/assets.js';
import { deliveryRoutes } from './routes/delivery.js';
import { DeliveryService } from '../delivery/service.js';
import { webhookRoutes } from './routes/webhooks.js';

const JSON_BODY_LIMIT = 1024 * 1024;

/** Builds the HTTP API on top of the services; the caller decides where it listens. */
export async function buildServer(services: Services): Promise<FastifyInstance> {
  const { config, engine, blobs, processors, log } = services;
  const app = Fastify({
    // Warn level: no line per request (the API answers thousands a second), but every failure is logged.
    loggerInstance: log.child({ component: 'api' }, { level: 'warn' }) as FastifyBaseLogger,
    trustProxy: config.trustProxy,
    bodyLimit: JSON_BODY_LIMIT,
    // Router errors (bad percent-encoding in the path) come before hooks and the error handler run.
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    // A client that sends its request slowly, or stalls mid-body, holds a connection (and, for an upload, a
    // temp file) only this long: the whole request must arrive within requestTimeout, and a connection idle
    // for bodyIdleTimeout is closed with 408 (event streams are exempt: they have heartbeats).
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.bodyIdleTimeoutMs,
    // Node checks request deadlines on this interval (30 s by default): a short timeout needs a shorter one.
    http: {
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.requestTimeoutMs / 4)),
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
    },
  });
  app.server.on('timeout', idleTimeoutHandler);
  // Requests are checked by TypeBox's compiler rather than Fastify's ajv: unknown fields are refused (not
  // dropped), query strings, params and headers are converted to the schema's types, and JSON bodies are
  // taken as sent. ajv's type coercion applied to bodies too and turned {"maxRunning": 0}, false or "" into
  // null, which means "no limit": an operator capping a vendor at 0 silently removed its cap.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  const limiter = new RateLimiter(engine, config.rateLimits);
  const signer = { secret: await loadSigningSecret(config), ttlMs: config.signedUrlTtlMs };
  const delivery = new DeliveryService({
    engine,
    blobs,
    config: config.delivery,
    maxPixels: config.maxPixels,
    chargeRender: (vendorId) => limiter.chargeVendor(vendorId, 'render'),
    onError: (err, message) => app.log.error({ err }, message),
  });
  app.addHook('onClose', () => delivery.close());
  const deps: ApiDeps = { engine, blobs, processors, config, limiter, signer, delivery };

  registerProblemHandlers(app);
  registerJsonParser(app);
  requireDeclaredAccess(app);
  await app.register(multipart, {
    limits: {
      // One byte over the limit, so the blob store's own limit refuses an oversized file before busboy cuts it.
      fileSize: config.maxUploadBytes + 1,
      files: config.maxBulkFiles,
      fields: 20,
      fieldSize: 64 * 1024,
      parts: config.maxBulkFiles + 20,
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'pixq', version: '0.1.0', description: 'Image-processing jobs for multi-vendor platforms.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    transform: jobOptionsTransform(processors),
  });
  await app.register(async (docs) => {
    declarePublic(docs);
    await docs.register(swaggerUi, { routePrefix: '/docs' });
  });

  registerCors(app, config.corsOrigins);
  registerCallerResolution(app, engine, config.adminKey, eventTokenKey(signer.secret), config.compatAnonymousVendor);
  limiter.register(app);
  registerAccessControl(app);
  registerFailedSubmissionCleanup(app, deps);

  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());
  await app.register(jobRoutes(deps));
  await app.register(submissionRoutes(deps));
  await app.register(eventRoutes(deps));
  await app.register(adminRoutes(deps));
  await app.register(statusRoutes(deps));
  await app.register(metricsRoutes(deps));
  await app.register(webhookRoutes(deps));
  await app.register(templateRoutes(deps));
  await app.register(assetRoutes(deps));
  await app.register(deliveryRoutes(deps));
  await registerCompat(app, deps);
  if (config.dashboard) {
    const deliveryOrigin = config.delivery.baseUrl && new URL(config.delivery.baseUrl).origin;
    await app.register(dashboardRoutes(undefined, deliveryOrigin ? [deliveryOrigin] : []));
  }
  return app;
}
