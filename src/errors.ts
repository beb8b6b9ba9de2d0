/**
 * One error type for everything pixq reports to a caller or records on a job.
 * `code` is stable (clients switch on it); `message` is for humans.
 * `retryable` decides whether a failed job attempt is tried again; `status` is the HTTP status the API answers with.
 */
export class PixqError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  /** For a retryable error: the least time before the next attempt (an upstream's `retry-after`). */
  readonly retryAfterMs?: number;

  constructor(
    code: string,
    message: string,
    opts: {
      retryable?: boolean;
      status?: number;
      details?: Record<string, unknown>;
      cause?: unknown;
      retryAfterMs?: number;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PixqError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status ?? 400;
    this.details = opts.details;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Errors a job handler may throw; anything else is treated as retryable `internal_error`. */
export const jobErrors = {
  invalidImage: (message: string, cause?: unknown) => new PixqError('invalid_image', message, { status: 422, cause }),
  /** The image a job would produce exceeds the output bounds: refused before any pixel work, never retried. */
  outputTooLarge: (width: number, height: number, limits: { maxPixels: number; maxSide: number }) =>
    new PixqError(
      'output_too_large',
      `the output would be ${width}x${height} (${width * height} pixels); outputs are limited to ${limits.maxPixels} pixels and ${limits.maxSide} px a side`,
      { status: 422, details: { width, height, ...limits } },
    ),
  timeout: (ms: number) => new PixqError('timeout', `attempt exceeded its ${ms} ms timeout`, { retryable: true }),
  cancelled: () => new PixqError('cancelled', 'job was cancelled', { status: 409 }),
};

export function validationFailed(message: string, details?: Record<string, unknown>): PixqError {
  return new PixqError('validation_failed', message, { status: 400, details });
}

export function notFound(what: string): PixqError {
  return new PixqError('not_found', `${what} not found`, { status: 404 });
}

/** How long a client is told to wait (`Retry-After`) when the store is unreachable, or full. */
const RETRY_AFTER_S = { unavailable: 5, full: 30 };

/** Connection-level failures: the store is unreachable, not the request wrong. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'SQLITE_BUSY',
]);
// node-postgres reports a dropped or timed-out connection by message only.
const UNREACHABLE_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|query read timeout|not queryable|connection error/i;

/**
 * A database or disk outage as the error a caller sees: `store_unavailable` (503) while PostgreSQL (or a
 * locked SQLite file) does not answer, `storage_full` (507) when the disk is full (SQLITE_FULL, ENOSPC,
 * PostgreSQL's disk_full). Both are retryable and carry `retryAfterSeconds`. Undefined for anything else.
 */
export function storeFault(err: unknown): PixqError | undefined {
  // pixq's own errors already say what happened (a failed download is not a database outage).
  if (!(err instanceof Error) || err instanceof PixqError) return undefined;
  const code = String((err as { code?: unknown }).code ?? '');
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === '53100') {
    return new PixqError('storage_full', 'the storage is full; nothing was recorded, retry once space is freed', {
      status: 507,
      retryable: true,
      details: { retryAfterSeconds: RETRY_AFTER_S.full },
      cause: err,
    });
  }
  // SQLSTATE class 08: connection exception; 57P0x: the server is shutting down, crashed, or still starting.
  if (
    UNREACHABLE_CODES.has(code) ||
    code.startsWith('08') ||
    /^57P0[123]$/.test(code) ||
    code === '53300' ||
    UNREACHABLE_MESSAGE.test(err.message)
  ) {
    return new PixqError('store_unavailable', 'the database is unreachable; nothing was recorded, retry shortly', {
      status: 503,
      retryable: true,
      details: { retryAfterSeconds: RETRY_AFTER_S.unavailable },
      cause: err,
    });
  }
  return undefined;
}

/** Normalises anything thrown by a handler into the `{code, message, retryable}` a job records. */
export function toJobError(err: unknown): { code: string; message: string; retryable: boolean; retryAfterMs?: number } {
  const known = err instanceof PixqError ? err : storeFault(err);
  if (known)
    return { code: known.code, message: known.message, retryable: known.retryable, retryAfterMs: known.retryAfterMs };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal_error', message, retryable: true };
}
