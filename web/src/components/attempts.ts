import type { JobEvent } from '@pixq/client';

export interface Attempt {
  number: number;
  startedAt: number;
  /** The state the attempt ended in (`delayed` when another attempt follows); undefined while it runs. */
  endState?: JobEvent['state'];
  endedAt?: number;
  error: JobEvent['error'];
}

/**
 * A job's attempts from its events, oldest first: each `running` state event starts one and the next state
 * event ends it. Only an attempt ending `delayed` or `failed` names an error: a job keeps its last error
 * until it succeeds, so the events after a failure repeat it.
 */
export function attemptsOf(events: readonly JobEvent[]): Attempt[] {
  const attempts: Attempt[] = [];
  for (const e of events) {
    if (e.kind !== 'state') continue;
    const open = attempts.at(-1);
    if (open && open.endState === undefined) {
      open.endState = e.state;
      open.endedAt = e.at;
      open.error = failureOf(e);
    }
    if (e.state === 'running') attempts.push({ number: e.attempts, startedAt: e.at, error: null });
  }
  return attempts;
}

/** The error a state event reports as an attempt's failure: only when it leaves the job `delayed` or `failed`. */
export function failureOf(e: JobEvent): JobEvent['error'] {
  return e.kind === 'state' && (e.state === 'delayed' || e.state === 'failed') ? e.error : null;
}

/** Stored and live events as one list, in id order, each once (a live event may also have been stored). */
export function mergeEvents(a: readonly JobEvent[], b: readonly JobEvent[]): JobEvent[] {
  const byId = new Map([...a, ...b].map((e) => [e.id, e]));
  return [...byId.values()].sort((x, y) => x.id - y.id);
}
