import { PixqError } from '../errors.js';

/**
 * At most `limit` tasks at once, taken round-robin from the owners (vendors) waiting: one vendor's burst of
 * cache misses queues behind its own renders, not in front of everyone's. Past `maxWaiting` tasks waiting in
 * all, new ones are refused at once with 503 `delivery_busy`, so memory stays bounded under a flood.
 */
export class FairQueue {
  private running = 0;
  private waiting = 0;
  /** Owner to its waiting tasks; Map order is the round-robin order (an owner served moves to the back). */
  private readonly queues = new Map<string, (() => void)[]>();

  constructor(
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {}

  async run<T>(owner: string, task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await this.wait(owner);
    else this.running++;
    try {
      return await task();
    } finally {
      this.next();
    }
  }

  private wait(owner: string): Promise<void> {
    if (this.waiting >= this.maxWaiting) {
      throw new PixqError('delivery_busy', 'too many renders are waiting; retry shortly', {
        status: 503,
        retryable: true,
        details: { retryAfterSeconds: 1 },
      });
    }
    this.waiting++;
    return new Promise((resolve) => {
      const queue = this.queues.get(owner);
      if (queue) queue.push(resolve);
      else this.queues.set(owner, [resolve]);
    });
  }

  /** Hands the finished task's slot to the next owner in turn, or frees it. */
  private next() {
    const first = this.queues.entries().next();
    if (first.done) {
      this.running--;
      return;
    }
    const [owner, queue] = first.value;
    const resume = queue.shift()!;
    this.queues.delete(owner);
    if (queue.length > 0) this.queues.set(owner, queue);
    this.waiting--;
    resume();
  }
}
