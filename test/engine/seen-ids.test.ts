import { describe, expect, it } from 'vitest';
import { SeenIds } from '../../src/engine/index.js';

describe('SeenIds', () => {
  it('passes ids in any order once each and remembers the newest', () => {
    const seen = new SeenIds(100);
    expect([105, 104, 106, 104, 105, 103].map((id) => seen.add(id))).toEqual([true, true, true, false, false, true]);
    expect(seen.newest).toBe(106);
  });

  it('forgets ids beyond its capacity, oldest first, and stays bounded', () => {
    const seen = new SeenIds(3);
    for (let id = 1; id <= 10_000; id++) seen.add(id);
    expect(seen.add(9998)).toBe(false);
    expect(seen.add(9997)).toBe(true); // forgotten: a repeat that old is passed on again
    expect(seen.newest).toBe(10_000);
  });
});
