import { abortError } from '../abort.js';

/**
 * Which rembg server a call goes to: pure bookkeeping, no I/O, so its rules can be tested on their own.
 * - A call takes a slot on the in-service server with the lowest share of its concurrency in use (ties: the
 *   one with more free slots, then the configured order), never beyond that concurrency; when every server
 *   the call may use is busy, it waits in line for a slot.
 * - Circuit breaker: `breakerFailures` consecutive failed calls take a server out of service; a success resets
 *   the count. Health checks take a server out (`markDown`) and put it back (`markUp`).
 * - `tried` lets one call move on to a server it has not tried yet; when none is left in service, `acquire`
 *   answers undefined at once instead of waiting.
 */
export interface PoolServer {
  url: string;
  concurrency: number;
}

export type CallOutcome = 'ok' | 'failed' | 'neutral';

export interface ServerView {
  url: string;
  concurrency: number;
  busy: number;
  inService: boolean;
  consecutiveFailures: number;
  /** Why the server is out of service, while it is. */
  outReason?: string;
}

interface Waiter {
  tried: ReadonlySet<string>;
  resolve(url: string | undefined): void;
}

export class ServerPool {
  private readonly servers: ServerView[];
  private readonly waiters: Waiter[] = [];

  constructor(
    servers: readonly PoolServer[],
    private readonly breakerFailures: number,
  ) {
    this.servers = servers.map((s) => ({ ...s, busy: 0, inService: true, consecutiveFailures: 0 }));
  }

  /** A copy of each server's state, in configured order. */
  view(): ServerView[] {
    return this.servers.map((s) => ({ ...s }));
  }

  /** Takes a slot on the least busy usable server, or undefined when every usable one is at its concurrency. */
  take(tried: ReadonlySet<string> = new Set()): string | undefined {
    let best: ServerView | undefined;
    for (const s of this.servers) {
      if (!this.usable(s, tried) || s.busy >= s.concurrency) continue;
      if (!best || lessBusy(s, best)) best = s;
    }
    if (best) best.busy++;
    return best?.url;
  }

  /** Whether some server the call has not tried is in service, so waiting for its slot makes sense. */
  canServe(tried: ReadonlySet<string> = new Set()): boolean {
    return this.servers.some((s) => this.usable(s, tried));
  }

  /** A slot on a server, waiting in line while all usable servers are busy; undefined when none is usable. */
  acquire(tried: ReadonlySet<string>, signal: AbortSignal): Promise<string | undefined> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(abortError(signal));
      };
      const waiter: Waiter = {
        tried,
        resolve: (taken) => {
          signal.removeEventListener('abort', onAbort);
          resolve(taken);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // In line behind earlier callers, but a slot they cannot use (a server they tried) goes to this one now.
      this.waiters.push(waiter);
      this.wake();
    });
  }

  /** Gives a slot back; a failure counts toward the breaker, a success clears the count. */
  release(url: string, outcome: CallOutcome, reason = 'failed'): void {
    const s = this.server(url);
    if (s.busy <= 0) throw new Error(`released ${url} more often than taken`);
    s.busy--;
    if (outcome === 'ok') s.consecutiveFailures = 0;
    if (outcome === 'failed' && ++s.consecutiveFailures >= this.breakerFailures) {
      this.takeOut(s, `${s.consecutiveFailures} consecutive failures, the last: ${reason}`);
    }
    this.wake();
  }

  markDown(url: string, reason: string): void {
    this.takeOut(this.server(url), reason);
    this.wake();
  }

  markUp(url: string): void {
    const s = this.server(url);
    s.inService = true;
    s.consecutiveFailures = 0;
    delete s.outReason;
    this.wake();
  }

  private takeOut(s: ServerView, reason: string): void {
    s.inService = false;
    s.outReason = reason;
  }

  private usable(s: ServerView, tried: ReadonlySet<string>): boolean {
    return s.inService && !tried.has(s.url);
  }

  /** Hands freed slots to waiters in arrival order; a waiter with no usable server left gets undefined. */
  private wake(): void {
    for (let i = 0; i < this.waiters.length;) {
      const waiter = this.waiters[i];
      const url = this.take(waiter.tried);
      if (url || !this.canServe(waiter.tried)) {
        this.waiters.splice(i, 1);
        waiter.resolve(url);
      } else i++;
    }
  }

  private server(url: string): ServerView {
    const s = this.servers.find((x) => x.url === url);
    if (!s) throw new Error(`unknown rembg server ${url}`);
    return s;
  }
}

/** Lower share of its concurrency in use; on a tie, more free slots (a bigger server absorbs more). */
function lessBusy(a: ServerView, b: ServerView): boolean {
  const share = a.busy * b.concurrency - b.busy * a.concurrency;
  if (share !== 0) return share < 0;
  return a.concurrency - a.busy > b.concurrency - b.busy;
}
