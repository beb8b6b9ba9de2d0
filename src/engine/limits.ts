/**
 * The bounds of what one job may ask for. They are part of the wire contract, so their one definition lives
 * with the request schemas in @pixq/client (which has no server dependency); the engine enforces them on every
 * enqueue.
 */
export { JOB_LIMITS } from '@pixq/client/schemas';
import type { JOB_LIMITS } from '@pixq/client/schemas';

export type JobLimit = keyof typeof JOB_LIMITS;
