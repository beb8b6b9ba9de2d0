import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { advanceClocks, planFairOrder } from '../../src/engine/fair-share.js';

const vendor = (id: string, weight: number, room = Infinity, virtualTime = 0) => ({
  vendorId: id,
  weight,
  virtualTime,
  room,
  nextJobId: id,
});

describe('fair-share planner', () => {
  it('serves backlogged vendors in proportion to their weights', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 5 }), (weights) => {
        const total = weights.reduce((a, b) => a + b, 0);
        const slots = total * 20;
        const order = planFairOrder(
          weights.map((w, i) => vendor(`v${i}`, w)),
          0,
          slots,
        );
        weights.forEach((w, i) => {
          const got = order.filter((v) => v === `v${i}`).length;
          expect(Math.abs(got - (slots * w) / total)).toBeLessThanOrEqual(1);
        });
      }),
    );
  });

  it('never plans more than a vendor’s room and stays work-conserving', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 30 }),
        (rooms, slots) => {
          const order = planFairOrder(
            rooms.map((r, i) => vendor(`v${i}`, 1, r)),
            0,
            slots,
          );
          rooms.forEach((r, i) => expect(order.filter((v) => v === `v${i}`).length).toBeLessThanOrEqual(r));
          expect(order.length).toBe(
            Math.min(
              slots,
              rooms.reduce((a, b) => a + b, 0),
            ),
          );
        },
      ),
    );
  });

  it('a vendor behind the global clock starts at the global clock: no banked credit', () => {
    const order = planFairOrder([vendor('busy', 1, Infinity, 100), vendor('idle', 1, Infinity, 0)], 99, 6);
    expect(order).toEqual(['idle', 'busy', 'idle', 'busy', 'idle', 'busy']);
  });

  it('advances each served vendor by claimed / weight from its start tag', () => {
    const { vendorTimes, globalTime } = advanceClocks(
      [
        { vendorId: 'a', weight: 2, virtualTime: 5, claimed: 4 },
        { vendorId: 'b', weight: 1, virtualTime: 1, claimed: 1 },
        { vendorId: 'c', weight: 1, virtualTime: 0, claimed: 0 },
      ],
      3,
    );
    expect(Object.fromEntries(vendorTimes)).toEqual({ a: 7, b: 4 });
    expect(globalTime).toBe(6.5);
  });
});
