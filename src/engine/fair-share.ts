/**
 * Weighted fair sharing between vendors: start-time fair queuing over a virtual clock.
 *
 * Each vendor has a virtual time: where its next job would start. A claim serves the vendor whose start
 * `max(own virtual time, global virtual time)` is smallest, then moves that vendor on by `1 / weight`.
 * A vendor that was idle starts at the global virtual time, so it gets its share at once but banks no
 * credit for the time it was away; a heavier vendor advances more slowly and so is served more often.
 * The global virtual time follows the start of the last job served.
 */
export interface FairCandidate {
  vendorId: string;
  weight: number;
  virtualTime: number;
  /** How many more jobs the vendor may start now (its running cap minus running jobs). */
  room: number;
  /** The vendor's next job id, which breaks ties in favour of the job waiting longest. */
  nextJobId: string;
}

export function startTag(virtualTime: number, globalTime: number): number {
  return Math.max(virtualTime, globalTime);
}

/** The order in which `slots` claims would serve vendors, one vendor id per claim. */
export function planFairOrder(candidates: FairCandidate[], globalTime: number, slots: number): string[] {
  const state = candidates.filter((c) => c.room > 0).map((c) => ({ ...c, start: startTag(c.virtualTime, globalTime) }));
  const order: string[] = [];
  while (order.length < slots && state.length > 0) {
    let best = 0;
    for (let i = 1; i < state.length; i++) {
      const a = state[i];
      const b = state[best];
      if (a.start < b.start || (a.start === b.start && a.nextJobId < b.nextJobId)) best = i;
    }
    const chosen = state[best];
    order.push(chosen.vendorId);
    chosen.start += 1 / chosen.weight;
    if (--chosen.room === 0) state.splice(best, 1);
  }
  return order;
}

/**
 * The clocks after the claims actually made (fewer than planned when a vendor ran out of ready jobs).
 * Returns each served vendor's new virtual time and the new global virtual time.
 */
export function advanceClocks(
  served: { vendorId: string; weight: number; virtualTime: number; claimed: number }[],
  globalTime: number,
): { vendorTimes: Map<string, number>; globalTime: number } {
  const vendorTimes = new Map<string, number>();
  let nextGlobal = globalTime;
  for (const v of served) {
    if (v.claimed === 0) continue;
    const start = startTag(v.virtualTime, globalTime);
    vendorTimes.set(v.vendorId, start + v.claimed / v.weight);
    nextGlobal = Math.max(nextGlobal, start + (v.claimed - 1) / v.weight);
  }
  return { vendorTimes, globalTime: nextGlobal };
}
