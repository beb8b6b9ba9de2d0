import { Agent, FormData, request, type Dispatcher } from 'undici';
import { PixqError } from '../../errors.js';
import { discard, readLimited } from '../../intake/fetch-url.js';
import { abortError } from '../abort.js';

/**
 * One HTTP call to a rembg server (`rembg s`): `POST <base>api/remove` with the image as the multipart field
 * `file`. rembg reads `bgc` and `extras` from the query and the other parameters from form fields.
 */
export interface RembgParams {
  model: string;
  onlyMask: boolean;
  postProcessMask: boolean;
  /** Flatten onto this colour: r, g, b, a, each 0..255. */
  background?: readonly [number, number, number, number];
  alphaMatting?: { foregroundThreshold: number; backgroundThreshold: number; erodeSize: number };
}

export interface CallLimits {
  timeoutMs: number;
  maxBytes: number;
  signal: AbortSignal;
}

/**
 * Why a call did not give an answer. `failed` is the server's fault (unreachable, timeout, an error status,
 * an answer too large): worth another server. `rejected` is a refusal of the request itself (see
 * REQUEST_REFUSED): another server of the same pool would say the same.
 */
export class RembgCallError extends Error {
  constructor(
    readonly kind: 'failed' | 'rejected',
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RembgCallError';
  }
}

/**
 * Statuses that judge the request, not the server: FastAPI's 422 for a parameter it does not accept (such as a
 * model that server version lacks), 400, 413 and 415. Anything else that is not 2xx (a 404 from a server that
 * is not rembg, 429, 5xx, a redirect) is the server's failure.
 */
const REQUEST_REFUSED = new Set([400, 413, 415, 422]);

export function removeUrl(base: string, params: RembgParams): URL {
  const url = new URL('api/remove', base);
  if (params.background) url.searchParams.set('bgc', params.background.join(','));
  return url;
}

export function removeForm(image: Buffer, contentType: string, params: RembgParams): FormData {
  const form = new FormData();
  form.set('model', params.model);
  form.set('om', String(params.onlyMask));
  form.set('ppm', String(params.postProcessMask));
  if (params.alphaMatting) {
    form.set('a', 'true');
    form.set('af', String(params.alphaMatting.foregroundThreshold));
    form.set('ab', String(params.alphaMatting.backgroundThreshold));
    form.set('ae', String(params.alphaMatting.erodeSize));
  }
  form.set('file', new Blob([image], { type: contentType }), 'image');
  return form;
}

export async function callRemove(
  agent: Agent,
  base: string,
  image: { bytes: Buffer; contentType: string },
  params: RembgParams,
  limits: CallLimits,
): Promise<Buffer> {
  const url = removeUrl(base, params);
  const body = removeForm(image.bytes, image.contentType, params);
  return exchange(agent, url, { method: 'POST', body }, limits, async (response) => {
    if (REQUEST_REFUSED.has(response.statusCode)) {
      const text = (await readLimited(response, 2048).catch(() => Buffer.alloc(0))).toString('utf8');
      const message = `refused the request with HTTP ${response.statusCode}: ${text.slice(0, 300)}`;
      throw new RembgCallError('rejected', message, response.statusCode);
    }
    if (response.statusCode < 200 || response.statusCode > 299) {
      throw new RembgCallError('failed', `answered HTTP ${response.statusCode}`, response.statusCode);
    }
    return readLimited(response, limits.maxBytes);
  });
}

/** A cheap request every rembg server answers (FastAPI's schema) to tell whether it is up. */
export async function probe(agent: Agent, base: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const limits = { timeoutMs, maxBytes: 0, signal };
  await exchange(agent, new URL('openapi.json', base), { method: 'GET' }, limits, async (response) => {
    discard(response);
    if (response.statusCode !== 200) {
      throw new RembgCallError('failed', `answered HTTP ${response.statusCode}`, response.statusCode);
    }
  });
}

/** Sends one request within the call's deadline; errors come out as RembgCallError, or the caller's abort. */
async function exchange<T>(
  agent: Agent,
  url: URL,
  init: { method: 'GET' | 'POST'; body?: FormData },
  limits: CallLimits,
  read: (response: Dispatcher.ResponseData) => Promise<T>,
): Promise<T> {
  const deadline = AbortSignal.timeout(limits.timeoutMs);
  const signal = AbortSignal.any([deadline, limits.signal]);
  try {
    const response = await request(url, { dispatcher: agent, ...init, signal });
    try {
      return await read(response);
    } catch (err) {
      discard(response);
      throw err;
    }
  } catch (err) {
    if (limits.signal.aborted) throw abortError(limits.signal);
    if (err instanceof RembgCallError) throw err;
    if (deadline.aborted) {
      throw new RembgCallError('failed', `did not answer within ${limits.timeoutMs} ms`, undefined, { cause: err });
    }
    if (err instanceof PixqError && err.code === 'payload_too_large') {
      throw new RembgCallError('failed', `answered more than ${limits.maxBytes} bytes`, undefined, { cause: err });
    }
    throw new RembgCallError('failed', `could not be reached: ${(err as Error).message}`, undefined, { cause: err });
  }
}

export function rembgAgent(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}
