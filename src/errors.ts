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

  constructor(
    code: string,
    message: string,
    opts: { retryable?: boolean; status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PixqError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status ?? 400;
    this.details = opts.details;
  }
}

/** Errors a job handler may throw; anything else is treated as retryable `internal_error`. */
export const jobErrors = {
  invalidImage: (message: string, cause?: unknown) =>
    new PixqError('invalid_image', message, { status: 422, cause }),
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

/** Normalises anything thrown by a handler into the `{code, message, retryable}` a job records. */
export function toJobError(err: unknown): { code: string; message: string; retryable: boolean } {
  if (err instanceof PixqError) return { code: err.code, message: err.message, retryable: err.retryable };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal_error', message, retryable: true };
}
