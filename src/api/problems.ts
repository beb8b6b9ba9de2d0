import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PixqError, storeFault } from '../errors.js';

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
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
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

export function toProblem(thrown: unknown): Problem {
  const err = storeFault(thrown) ?? thrown;
  if (err instanceof PixqError)
    return problem(err.status, err.code, err.message, err.details ? { details: err.details } : {});
  const e = err as FastifyError;
  if (e.validation) {
    // The validator reports every mismatch; a large hostile body has thousands, so the answer names the first few.
    const errors = e.validation
      .slice(0, MAX_VALIDATION_ERRORS)
      .map((v) => ({ path: `${e.validationContext ?? ''}${v.instancePath}`, message: v.message ?? 'invalid' }));
    return problem(400, 'validation_failed', `request ${errors.map((x) => `${x.path} ${x.message}`).join('; ')}`, {
      errors,
    });
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
  // An outage (503, 507) or a spent budget (429) says when to come back.
  const retryAfter = (p.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  return reply.code(p.status).type('application/problem+json').send(p);
}

/**
 * For Fastify's `frameworkErrors` option: errors the router raises before any route or hook runs (a path with
 * broken percent-encoding, an over-long path parameter). Without it they leave as Fastify's own JSON.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const p = toProblem(err);
  logFailure(request, err, p);
  return sendProblem(reply, { ...p, instance: request.url.split('?')[0] });
}

/** A 500 is a bug and logged with its stack; an outage (503, 507) is logged once per request, briefly. */
function logFailure(request: FastifyRequest, err: unknown, p: Problem) {
  if (p.status === 500) request.log.error({ err }, 'request failed');
  else if (p.status > 500)
    request.log.warn({ code: p.code, cause: (err as Error).message }, 'request failed: store outage');
}

/** Node's own errors for requests it could not parse or did not get in time, before Fastify sees them. */
function clientProblem(err: NodeJS.ErrnoException): Problem {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return problem(408, 'request_timeout', 'the request did not arrive in time');
  if (err.code === 'HPE_HEADER_OVERFLOW') return problem(431, 'headers_too_large', 'the request headers are too large');
  return problem(400, 'malformed_request', 'the request is not valid HTTP (for example a NUL or CR in a header value)');
}

/** The response of the request in progress on `socket`, if any (Node keeps it there, undocumented). */
function responseOf(socket: Socket): { headersSent: boolean } | undefined {
  return (socket as Socket & { _httpMessage?: { headersSent: boolean } })._httpMessage ?? undefined;
}

/**
 * For Fastify's `clientErrorHandler` option: Node's HTTP parser refuses a malformed request (NUL or CR in a
 * header, an over-long header) and times out slow ones before any route, hook or error handler runs. The
 * answer is problem+json like every other, and the connection is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already under way on this connection cannot be followed by another.
  if (socket.writable && !responseOf(socket)?.headersSent) {
    const p = clientProblem(err);
    const body = JSON.stringify(p);
    socket.write(
      `HTTP/1.1 ${p.status} ${p.title}\r\ncontent-type: application/problem+json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * For the HTTP server's `timeout` event (a connection idle for the idle timeout): a request still arriving
 * gets 408 `request_timeout`; a connection between requests is just closed.
 */
export function idleTimeoutHandler(socket: Socket) {
  const timeout = Object.assign(new Error('the connection was idle too long'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
  if (responseOf(socket)) clientErrorHandler(timeout, socket);
  else socket.destroy();
}

export function registerProblemHandlers(app: FastifyInstance) {
  app.setErrorHandler((err, request: FastifyRequest, reply) => {
    const p = toProblem(err);
    logFailure(request, err, p);
    return sendProblem(reply, { ...p, instance: request.url.split('?')[0] });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
