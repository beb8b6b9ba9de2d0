import { afterEach, describe, expect, it } from 'vitest';
import { openEngine, type Engine, type JobEvent } from '../../src/engine/index.js';
import { DEFAULT_OPTIONS } from '../support/engine.js';
import { waitUntil } from '../support/processes.js';
import { tempDir } from '../support/stores.js';

/**
 * Two engines on one SQLite file, as two processes have them: each one's bus delivers its own events at once and
 * the other's by tailing the events table, every event exactly once, however their writes interleave.
 */
describe('the SQLite event bus across processes', () => {
  const opened: Engine[] = [];
  afterEach(async () => {
    for (const engine of opened.splice(0)) await engine.close();
  });

  it("delivers another process's events once each, interleaved with its own", async () => {
    const dataDir = tempDir();
    const [a, b] = [await openEngine({ dataDir }, DEFAULT_OPTIONS), await openEngine({ dataDir }, DEFAULT_OPTIONS)];
    opened.push(a, b);
    const seen: Record<'a' | 'b', JobEvent[]> = { a: [], b: [] };
    a.bus.onEvent((e) => seen.a.push(e));
    b.bus.onEvent((e) => seen.b.push(e));
    const vendor = await a.vendors.create('v');
    const noops = (n: number) => Array.from({ length: n }, () => ({ type: 'noop' }));
    for (const [engine, n] of [
      [a, 3],
      [b, 2],
      [a, 1],
      [b, 1200], // more than one page of the tail
      [a, 5],
      [b, 1],
    ] as const)
      await engine.jobs.enqueue(vendor.id, noops(n));
    const stored = (await a.jobs.eventsAfter({ afterId: 0, limit: 10_000 })).map((e) => e.id);
    expect(stored).toHaveLength(1212);
    for (const name of ['a', 'b'] as const) {
      await waitUntil(() => seen[name].length >= stored.length, 30_000, `${name} to see every event`);
      const ids = seen[name].map((e) => e.id);
      expect(new Set(ids).size, `${name} saw an event twice`).toBe(ids.length);
      expect([...ids].sort((x, y) => x - y)).toEqual(stored);
    }
  });
});
