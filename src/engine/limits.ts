/**
 * The bounds of what one job may ask for. They are part of the wire contract, so their one definition lives
 * with the request schemas in @pixq/client (which has no server dependency); the engine enforces them on every
 * enqueue.
 */
export { JOB_LIMITS } from '@pixq/client/schemas';
import type { JOB_LIMITS } from '@pixq/client/schemas';

export type JobLimit = keyof typeof JOB_LIMITS;

/**
 * The keys auth compares: at most `maxLength` characters (a longer one is refused unread), printable ASCII (a
 * header carries anything else in whatever encoding the client chose). The configuration refuses an admin key
 * outside these, which would otherwise never match.
 */
export const API_KEY_LIMITS = { maxLength: 200, characters: /^[\x20-\x7e]+$/ } as const;
