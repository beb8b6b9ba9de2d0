/** Rate limits as an operator writes them in PIXQ_RATE_* (`100/15m`): a count per window. */
export interface Rate {
  limit: number;
  windowMs: number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `100/15m` -> {limit: 100, windowMs: 900000}; empty -> null (no limit of its own); else an Error naming the form. */
export function parseRate(text: string): Rate | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const match = /^(\d+)\s*\/\s*(\d*)\s*([smhd])$/.exec(trimmed);
  const windowMs = match ? Number(match[2] || 1) * UNITS[match[3]] : 0;
  if (!match || Number(match[1]) < 1 || windowMs < 1000)
    throw new Error(`"${text}" is not a rate like 100/15m (count / window in s, m, h or d)`);
  return { limit: Number(match[1]), windowMs };
}

/** In the largest unit that divides the window evenly: {100, 900000} -> `100/15m`, {50, 60000} -> `50/1m`. */
export function formatRate(rate: Rate | null | undefined): string {
  if (!rate) return '';
  const [unit, ms] = Object.entries(UNITS)
    .reverse()
    .find(([, ms]) => rate.windowMs % ms === 0) ?? ['s', 1000];
  return `${rate.limit}/${rate.windowMs / ms}${unit}`;
}
