/**
 * The bounds of what one job may ask for. The engine enforces them on every enqueue; the API's request schema
 * and the configuration's defaults read them from here, so every layer refuses the same values.
 */
export const JOB_LIMITS = {
  maxAttempts: { min: 1, max: 100 },
  priority: { min: -1000, max: 1000 },
  timeoutMs: { min: 100, max: 24 * 3600_000 },
  delayMs: { min: 0, max: 365 * 24 * 3600_000 },
} as const;

export type JobLimit = keyof typeof JOB_LIMITS;
