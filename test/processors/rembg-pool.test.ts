import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PixqError } from '../../src/errors.js';
import { ServerPool, type CallOutcome } from '../../src/processors/rembg/pool.js';

const url = (i: number) => `http://s${i}/`;

type Command =
  | { kind: 'take'; tried: number[] }
  | { kind: 'release'; pick: number; outcome: CallOutcome }
  | { kind: 'down'; server: number }
  | { kind: 'up'; server: number };

const command = (servers: number): fc.Arbitrary<Command> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ kind: fc.constant('take' as const), tried: fc.subarray([...Array(servers).keys()]) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('release' as const),
        pick: fc.nat(),
        outcome: fc.constantFrom<CallOutcome>('ok', 'failed', 'neutral'),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('down' as const), server: fc.nat(servers - 1) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('up' as const), server: fc.nat(servers - 1) }) },
  );

const scenario = fc
  .record({
    concurrency: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
    breaker: fc.integer({ min: 1, max: 3 }),
  })
  .chain(({ concurrency, breaker }) =>
    fc.record({
      concurrency: fc.constant(concurrency),
      breaker: fc.constant(breaker),
      commands: fc.array(command(concurrency.length), { maxLength: 60 }),
    }),
  );

describe('rembg server pool', () => {
  it('never exceeds a server concurrency, always picks the least busy usable server, and opens the breaker after N failures', () => {
    fc.assert(
      fc.property(scenario, ({ concurrency, breaker, commands }) => {
        const pool = new ServerPool(
          concurrency.map((c, i) => ({ url: url(i), concurrency: c })),
          breaker,
        );
        const held: string[] = [];
        for (const cmd of commands) {
          const before = pool.view();
          if (cmd.kind === 'take') {
            const tried = new Set(cmd.tried.map(url));
            const open = before.filter((s) => s.inService && !tried.has(s.url) && s.busy < s.concurrency);
            const taken = pool.take(tried);
            if (open.length === 0) {
              expect(taken).toBeUndefined();
              continue;
            }
            expect(taken).toBeDefined();
            const share = (s: (typeof before)[number]) => s.busy / s.concurrency;
            const chosen = before.find((s) => s.url === taken)!;
            expect(open.map((s) => s.url)).toContain(taken);
            expect(share(chosen)).toBe(Math.min(...open.map(share)));
            held.push(taken!);
          } else if (cmd.kind === 'release') {
            if (held.length === 0) continue;
            const [server] = held.splice(cmd.pick % held.length, 1);
            const failuresBefore = before.find((s) => s.url === server)!.consecutiveFailures;
            pool.release(server, cmd.outcome);
            const after = pool.view().find((s) => s.url === server)!;
            if (cmd.outcome === 'failed' && failuresBefore + 1 >= breaker) expect(after.inService).toBe(false);
            if (cmd.outcome === 'ok') expect(after.consecutiveFailures).toBe(0);
          } else if (cmd.kind === 'down') {
            pool.markDown(url(cmd.server), 'probe failed');
            expect(pool.view()[cmd.server].inService).toBe(false);
          } else {
            pool.markUp(url(cmd.server));
            expect(pool.view()[cmd.server]).toMatchObject({ inService: true, consecutiveFailures: 0 });
          }
          for (const s of pool.view()) {
            expect(s.busy).toBeLessThanOrEqual(s.concurrency);
            expect(s.busy).toBe(held.filter((h) => h === s.url).length);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps callers waiting in line for a slot, and answers undefined at once when no untried server is in service', async () => {
    const pool = new ServerPool(
      [
        { url: url(0), concurrency: 1 },
        { url: url(1), concurrency: 1 },
      ],
      1,
    );
    const signal = new AbortController().signal;
    expect(await pool.acquire(new Set(), signal)).toBe(url(0));
    expect(await pool.acquire(new Set(), signal)).toBe(url(1));
    const order: string[] = [];
    const first = pool.acquire(new Set(), signal).then((u) => order.push(`first ${u}`));
    const second = pool.acquire(new Set([url(0)]), signal).then((u) => order.push(`second ${u}`));
    pool.release(url(0), 'ok');
    await first;
    expect(order).toEqual([`first ${url(0)}`]);
    pool.release(url(1), 'failed'); // breaker of 1: s1 goes out, so the second caller has nothing left
    await second;
    expect(order).toEqual([`first ${url(0)}`, 'second undefined']);
    expect(await pool.acquire(new Set([url(0)]), signal)).toBeUndefined();
  });

  it('drops a waiting caller on abort without handing it a slot', async () => {
    const pool = new ServerPool([{ url: url(0), concurrency: 1 }], 3);
    const never = new AbortController().signal;
    await pool.acquire(new Set(), never);
    const controller = new AbortController();
    const waiting = pool.acquire(new Set(), controller.signal);
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(PixqError);
    pool.release(url(0), 'ok');
    expect(pool.view()[0].busy).toBe(0);
  });
});
