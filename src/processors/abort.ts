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
 * Settles with `work`, or rejects as soon as `signal` aborts; the work goes on and its result, or error, is
 * dropped. Only for work done elsewhere in turn (a model session's own process or thread), where an aborted run
 * holds nothing of this process's and the next run queues behind it anyway. Image work in this process uses
 * `afterStopping`.
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

/**
 * Settles with `work`; if `signal` aborted meanwhile, rejects with the abort's error, but only once `work` has
 * settled. libvips work cannot be interrupted: a handler that returned at the abort would free its worker slot
 * while its work still held a thread of libuv's pool, and work started in that slot would pile up behind it,
 * delaying every vendor's image jobs. So a handler ends when its image work has really stopped.
 */
export async function afterStopping<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  let value: T;
  try {
    value = await work;
  } catch (err) {
    throwIfAborted(signal);
    throw err;
  }
  throwIfAborted(signal);
  return value;
}
