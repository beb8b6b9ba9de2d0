import type { Problem } from './schemas.js';

/**
 * Every refusal the API answers, as one type: `code` is the problem's stable code (`rate_limited`,
 * `not_found`, ...), `status` the HTTP status, `retryAfter` the `Retry-After` header in seconds when sent.
 * An answer that is not problem+json (a proxy's HTML page) gets the code `http_<status>`.
 */
export class PixqApiError extends Error {
  override readonly name = 'PixqApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | undefined,
    /** The problem body as sent (extension members included); undefined for non-problem answers. */
    readonly problem: Problem | undefined,
  ) {
    super(message);
  }

  /** Builds the error from a failed response, reading its body. */
  static async from(res: Response): Promise<PixqApiError> {
    const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
    const type = res.headers.get('content-type') ?? '';
    if (/json/.test(type)) {
      const body = (await res.json().catch(() => undefined)) as Problem | undefined;
      if (body && typeof body.code === 'string') {
        return new PixqApiError(res.status, body.code, body.detail ?? body.title ?? body.code, retryAfter, body);
      }
    } else {
      await res.body?.cancel().catch(() => undefined);
    }
    return new PixqApiError(
      res.status,
      `http_${res.status}`,
      `HTTP ${res.status} ${res.statusText}`.trim(),
      retryAfter,
      undefined,
    );
  }
}

/** Retry-After as seconds: delta-seconds or an HTTP date. */
function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
