import { sql } from 'kysely';
import type { Tx } from '../transaction.js';

/**
 * Adds `cost` to a fixed-window counter in one atomic statement (an upsert that resets the count when the
 * window moved on), so concurrent API processes share one count. Returns the count after adding.
 */
export async function addToBucket(tx: Tx, key: string, windowStart: number, cost: number): Promise<number> {
  const row = await tx
    .insertInto('rate_buckets')
    .values({ key, window_start: windowStart, count: cost })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        count: sql<number>`case when rate_buckets.window_start = excluded.window_start then rate_buckets.count + excluded.count else excluded.count end`,
        window_start: sql<number>`excluded.window_start`,
      }),
    )
    .returning('count')
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Gives back `cost` taken by a request that was refused after all. */
export async function refundBucket(tx: Tx, key: string, windowStart: number, cost: number): Promise<void> {
  await tx
    .updateTable('rate_buckets')
    .set({ count: sql<number>`count - ${cost}` })
    .where('key', '=', key)
    .where('window_start', '=', windowStart)
    .execute();
}
