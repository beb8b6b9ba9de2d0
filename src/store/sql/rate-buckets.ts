import { sql } from 'kysely';
import type { Tx } from '../transaction.js';

/**
 * Adds `cost` to a fixed-window counter in one atomic statement (an upsert that resets the count when the
 * window moved on), so concurrent API processes share one count. Returns the count after adding.
 */
export async function addToBucket(tx: Tx, key: string, windowStart: number, cost: number): Promise<number> {
  // A template rather than the query builder: every API request runs it once per budget it spends.
  const { rows } = await sql<{ count: number }>`
    insert into rate_buckets (key, window_start, count) values (${key}, ${windowStart}, ${cost})
    on conflict (key) do update set
      count = case when rate_buckets.window_start = excluded.window_start
        then rate_buckets.count + excluded.count else excluded.count end,
      window_start = excluded.window_start
    returning count`.execute(tx);
  return Number(rows[0].count);
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

/** Deletes counters whose window started before `before`: their windows are long over. */
export async function deleteBucketsBefore(tx: Tx, before: number): Promise<void> {
  await tx.deleteFrom('rate_buckets').where('window_start', '<', before).execute();
}
