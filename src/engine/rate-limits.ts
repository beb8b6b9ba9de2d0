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
  key: string;
  windowStart: number;
  cost: number;
}

export interface RateLimitCharge {
  rule: RateLimitRule;
  cost: number;
}

/**
 * Fixed-window rate limits kept in the store, so every API process counts against the same budget.
 * One request's charges are spent together in one transaction: all of them, or, when any budget is spent,
 * none (a refused request costs nothing, and no other request ever sees the refused one's count).
 */
export class RateLimitService {
  constructor(private readonly ctx: EngineContext) {}

  /** Spends each charge's cost from `subject`'s budgets; the outcomes say which, if any, refused. */
  async consume(subject: string, charges: RateLimitCharge[]): Promise<RateLimitOutcome[]> {
    const now = this.ctx.now();
    return this.ctx.write(async (tx) => {
      const outcomes: RateLimitOutcome[] = [];
      for (const { rule, cost } of charges) {
        const windowStart = Math.floor(now / rule.windowMs) * rule.windowMs;
        const key = `${subject}:${rule.name}`;
        const count = await addToBucket(tx, key, windowStart, cost);
        const allowed = count <= rule.limit;
        const used = allowed ? count : count - cost;
        outcomes.push({
          rule,
          allowed,
          remaining: Math.max(0, rule.limit - used),
          resetMs: windowStart + rule.windowMs - now,
          key,
          windowStart,
          cost,
        });
        if (!allowed) break;
      }
      if (outcomes.some((o) => !o.allowed)) {
        for (const o of outcomes) await refundBucket(tx, o.key, o.windowStart, o.cost);
      }
      return outcomes;
    });
  }
}
