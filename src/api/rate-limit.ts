import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config, RateLimit } from '../config.js';
import type { Engine, RateLimitOutcome, Vendor } from '../engine/index.js';
import { PixqError, storeFault } from '../errors.js';

/** The budgets a request can spend. `requests` is every vendor request; the others follow the old system. */
export type Budget = 'requests' | 'image' | 'removeBackground' | 'bulk' | 'render' | 'anonymous';

const POLICY_NAMES: Record<Budget, string> = {
  requests: 'requests',
  image: 'image',
  removeBackground: 'remove-background',
  bulk: 'bulk',
  render: 'render',
  anonymous: 'anonymous',
};

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Budgets a vendor's request to this route spends one unit of, besides `requests`. */
    budgets?: Budget[];
    /**
     * False where the route authorises callers without a key by other means (a signed URL) and spends the
     * anonymous budget itself, through `chargeAnonymous`, only for the ones it refuses; and for the dashboard's
     * static files, which hold no data.
     */
    meterAnonymous?: boolean;
  }
}

/**
 * Per-vendor and per-address rate limits, counted in the store so several API processes share them.
 * Every answer carries the IETF `RateLimit-Policy` and `RateLimit` fields for the budgets it touched;
 * a refusal is 429 `rate_limited` with `Retry-After`.
 */
export class RateLimiter {
  constructor(
    private readonly engine: Engine,
    private readonly defaults: Config['rateLimits'],
  ) {}

  register(app: FastifyInstance) {
    // Runs before access control, so failed key guesses spend the anonymous budget too.
    app.addHook('onRequest', async (request, reply) => {
      // Health probes stay outside the anonymous budget so an orchestrator's checks never get 429.
      if (request.routeOptions.config.probe) return;
      const caller = request.caller;
      // A route's own budgets are charged with `requests` in one go: one transaction per request.
      const own = (request.routeOptions.config.budgets ?? []).map((b): [Budget, number] => [b, 1]);
      try {
        if (caller.kind === 'vendor') await this.charge(request, reply, [['requests', 1], ...own]);
        if (request.routeOptions.config.meterAnonymous !== false) await this.chargeAnonymous(request, reply);
      } catch (err) {
        if (!readOnly(request) || !storeFault(err)) throw err;
        // The store refuses the counter's write (disk full, database down). A read changes nothing, so it goes
        // on unmetered; it answers if the store can still be read (a full SQLite disk) and 503s if not.
        request.log.warn({ code: storeFault(err)!.code }, 'rate-limit counter not written; read served unmetered');
      }
    });
  }

  /** Spends one unit of the anonymous budget of a caller without a valid key (per client address). */
  async chargeAnonymous(request: FastifyRequest, reply: FastifyReply) {
    if (request.caller.kind === 'anonymous') await this.charge(request, reply, [['anonymous', 1]]);
  }

  /**
   * Spends `cost` from each budget, all or none; throws 429 when any is exhausted. The budgets are the calling
   * vendor's, or `payer`'s when the admin acts on that vendor's jobs.
   */
  async charge(
    request: FastifyRequest,
    reply: FastifyReply,
    charges: [Budget, number][],
    payer = callerVendor(request),
  ) {
    const outcomes = await this.spend(payer ? `vendor:${payer.id}` : `ip:${request.ip}`, payer, charges);
    addHeaders(reply, outcomes);
    const refused = refusal(outcomes);
    if (refused) {
      reply.header('retry-after', String(refused.details!.retryAfterSeconds));
      throw refused;
    }
  }

  /** Spends one unit of a vendor's budget outside a vendor's request (a render for a delivery URL). */
  async chargeVendor(vendorId: string, budget: Budget) {
    const payer = await this.engine.vendors.get(vendorId);
    const refused = refusal(await this.spend(`vendor:${payer.id}`, payer, [[budget, 1]]));
    if (refused) throw refused;
  }

  private async spend(subject: string, payer: Vendor | undefined, charges: [Budget, number][]) {
    const wanted = charges
      .filter(([, cost]) => cost > 0)
      .map(([budget, cost]) => ({ rule: { name: POLICY_NAMES[budget], ...this.rule(payer, budget) }, cost }));
    if (wanted.length === 0) return [];
    return this.engine.rateLimits.consume(subject, wanted);
  }

  /** What is left of a vendor's budget now, spending nothing: a charge of zero reads the current window. */
  async remaining(vendor: Vendor, budget: Budget): Promise<RateLimitOutcome> {
    const rule = { name: POLICY_NAMES[budget], ...this.rule(vendor, budget) };
    const [outcome] = await this.engine.rateLimits.consume(`vendor:${vendor.id}`, [{ rule, cost: 0 }]);
    return outcome;
  }

  private rule(payer: Vendor | undefined, budget: Budget): RateLimit {
    return payer?.rateLimits?.[budget] ?? this.defaults[budget];
  }
}

/** The 429 for the first budget refused, if any (with `retryAfterSeconds`, which the answer's Retry-After gets). */
function refusal(outcomes: RateLimitOutcome[]): PixqError | undefined {
  const refused = outcomes.find((o) => !o.allowed);
  if (!refused) return undefined;
  const retryAfter = Math.max(1, Math.ceil(refused.resetMs / 1000));
  return new PixqError(
    'rate_limited',
    `the ${refused.rule.name} budget of ${refused.rule.limit} per ${refused.rule.windowMs / 1000} s is spent; retry in ${retryAfter} s`,
    { status: 429, details: { policy: refused.rule.name, limit: refused.rule.limit, retryAfterSeconds: retryAfter } },
  );
}

function callerVendor(request: FastifyRequest): Vendor | undefined {
  return request.caller.kind === 'vendor' ? request.caller.vendor : undefined;
}

function readOnly(request: FastifyRequest) {
  return request.method === 'GET' || request.method === 'HEAD';
}

function addHeaders(reply: FastifyReply, outcomes: RateLimitOutcome[]) {
  const policies = outcomes.map((o) => `"${o.rule.name}";q=${o.rule.limit};w=${Math.round(o.rule.windowMs / 1000)}`);
  const states = outcomes.map((o) => `"${o.rule.name}";r=${o.remaining};t=${Math.ceil(o.resetMs / 1000)}`);
  appendHeader(reply, 'ratelimit-policy', policies);
  appendHeader(reply, 'ratelimit', states);
}

function appendHeader(reply: FastifyReply, name: string, items: string[]) {
  if (items.length === 0) return;
  const existing = reply.getHeader(name);
  reply.header(name, [existing, ...items].filter(Boolean).join(', '));
}
