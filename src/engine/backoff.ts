/**
 * Exponential backoff with full jitter: the n-th retry waits a random time in [0, min(max, base * 2^(n-1))].
 * Jitter spreads out retries of jobs that failed together (an upstream outage) instead of retrying them in step.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling * random());
}
