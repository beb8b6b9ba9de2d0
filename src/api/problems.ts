import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PixqError } from '../errors.js';

/**
 * Every error leaves as RFC 9457 problem+json with a stable `code`. Fastify's own errors (bad JSON, wrong
 * content type, schema validation, size limits) are translated; anything unexpected becomes a generic 500
 * without internals, and is logged.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function problem(status: number, code: string, detail: string, extra: Record<string, unknown> = {}): Problem {
  return { type: `urn:pixq:problem:${code}`, title: TITLES[status] ?? 'Error', status, detail, code, ...extra };
}

/** Fastify error codes mapped to pixq's stable codes. */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_REQ_FILE_TOO_LARGE: [413, 'payload_too_large'],
  FST_FILES_LIMIT: [413, 'payload_too_large'],
  FST_PARTS_LIMIT: [413, 'payload_too_large'],
  FST_FIELDS_LIMIT: [413, 'payload_too_large'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'validation_failed'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'validation_failed'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [415, 'unsupported_media_type'],
  FST_PROTO_VIOLATION: [400, 'validation_failed'],
  FST_ERR_VALIDATION: [400, 'validation_failed'],
  FST_ERR_BAD_URL: [400, 'validation_failed'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long'],
};

const MAX_VALIDATION_ERRORS = 10;

export function toProblem(err: unknown): Problem {
  if (err instanceof PixqError) return problem(err.status, err.code, err.message, err.details ? { details: err.details } : {});
  const e = err as FastifyError;
  if (e.validation) {
    // The validator reports every mismatch; a large hostile body has thousands, so the answer names the first few.
    const errors = e.validation
      .slice(0, MAX_VALIDATION_ERRORS)
      .map((v) => ({ path: `${e.validationContext ?? ''}${v.instancePath}`, message: v.message ?? 'invalid' }));
    return problem(400, 'validation_failed', `request ${errors.map((x) => `${x.path} ${x.message}`).join('; ')}`, { errors });
  }
  if (e.code && FASTIFY_CODES[e.code]) {
    const [status, code] = FASTIFY_CODES[e.code];
    return problem(status, code, e.message);
  }
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return problem(400, 'invalid_json', 'the request body is not valid JSON');
  }
  const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
  if (status < 500) return problem(status, 'bad_request', e.message);
  return problem(500, 'internal_error', 'an unexpected error occurred; it has been logged');
}

export function sendProblem(reply: FastifyReply, p: Problem) {
  return reply.code(p.status).type('application/problem+json').send(p);
}

/**
 * For Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs (a path with
 * broken percent-encoding, an over-long path parameter). Without it they leave as Fastify's own JSON.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const p = toProblem(err);
  if (p.status >= 500) request.log.error({ err }, 'request failed');
  return sendProblem(reply, { ...p, instance: request.url.split('?')[0] });
}

export function registerProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler((err, request: FastifyRequest, reply) => {
    const p = toProblem(err);
    if (p.status >= 500) request.log.error({ err }, 'request failed');
    return sendProblem(reply, { ...p, instance: request.url.split('?')[0] });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
