import type { DeliveryService } from '../delivery/service.js';
import type { IntakeDeps } from './intake.js';
import type { RateLimiter } from './rate-limit.js';
import type { Signer } from './views.js';

/** What the route plugins share. */
export interface ApiDeps extends IntakeDeps {
  limiter: RateLimiter;
  signer: Signer;
  delivery: DeliveryService;
}
