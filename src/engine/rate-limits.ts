import { addToBucket, refundBucket } from '../store/sql/rate-buckets.js';
import type { EngineContext } from './context.js';

export interface RateLimitRule {
  /** Shown to clients as the policy name, e.g. `image`. */
  name: string;
  limit: number;
  windowMs: number;
}

export interface RateLimitOutcome {
  rule: RateLimitRule;
  allowed: boolean;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
  /** For a refund if a later check refuses the same request. */
  key: string;
  windowStart: number;
  cost: number;
}

/**
 * Fixed-window rate limits kept in the store, so every API process counts against the same budget.
 * A refused request does not spend budget.
 */
export class RateLimitService {
  constructor(private readonly ctx: EngineContext) {}

  async consume(subject: string, rule: RateLimitRule, cost = 1): Promise<RateLimitOutcome> {
    const now = this.ctx.now();
    const windowStart = Math.floor(now / rule.windowMs) * rule.windowMs;
    const key = `${subject}:${rule.name}`;
    const count = await this.ctx.write((tx) => addToBucket(tx, key, windowStart, cost));
    const allowed = count <= rule.limit;
    if (!allowed) await this.ctx.write((tx) => refundBucket(tx, key, windowStart, cost));
    const used = allowed ? count : count - cost;
    return {
      rule,
      allowed,
      remaining: Math.max(0, rule.limit - used),
      resetMs: windowStart + rule.windowMs - now,
      key,
      windowStart,
      cost,
    };
  }

  async refund(outcome: RateLimitOutcome): Promise<void> {
    if (outcome.allowed) await this.ctx.write((tx) => refundBucket(tx, outcome.key, outcome.windowStart, outcome.cost));
  }
}
