import { jobErrors, PixqError } from '../errors.js';

/**
 * The error for an aborted signal: its reason when that is a PixqError (a timeout, a cancel), `cancelled`
 * otherwise. The worker records the outcome from the signal's own reason; this is what handlers throw.
 */
export function abortError(signal: AbortSignal): PixqError {
  return signal.reason instanceof PixqError ? signal.reason : jobErrors.cancelled();
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

/**
 * Settles with `work`, or rejects as soon as `signal` aborts. Native work (libvips, ONNX Runtime, wasm)
 * cannot be interrupted: it finishes in the background and its result, or error, is dropped.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => undefined);
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
