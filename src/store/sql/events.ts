import { sql } from 'kysely';
import type { Tx } from '../transaction.js';

export interface StoredEvent {
  vendor_id: string;
  job_id: string;
  batch_id: string | null;
  payload: string;
  created_at: number;
}

const CHUNK = 300;

/** Appends events and returns their ids in order (the ids SSE clients resume from). */
export async function insertEvents(tx: Tx, events: StoredEvent[]): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < events.length; i += CHUNK) {
    const values = events
      .slice(i, i + CHUNK)
      .map((e) => sql`(${e.vendor_id}, ${e.job_id}, ${e.batch_id}, ${e.payload}, ${e.created_at})`);
    // Hand-written: every job writes two or more events, and the query builder's per-row parsing shows.
    const { rows } = await sql<{ id: number }>`
      insert into events (vendor_id, job_id, batch_id, payload, created_at) values ${sql.join(values)}
      returning id`.execute(tx);
    ids.push(...rows.map((r) => Number(r.id)));
  }
  return ids;
}

/** A vendor's events after `afterId`, oldest first, optionally for one job or batch. */
export async function selectEventsAfter(
  tx: Tx,
  filter: { vendorId: string; afterId: number; jobId?: string; batchId?: string; limit: number },
) {
  let query = tx
    .selectFrom('events')
    .selectAll()
    .where('vendor_id', '=', filter.vendorId)
    .where('id', '>', filter.afterId)
    .orderBy('id')
    .limit(filter.limit);
  if (filter.jobId !== undefined) query = query.where('job_id', '=', filter.jobId);
  if (filter.batchId !== undefined) query = query.where('batch_id', '=', filter.batchId);
  return query.execute();
}

/**
 * Deletes events created before `before`. Ids grow with time, so the first recent event's id bounds the old
 * ones: the key range replaces an index on created_at that every event insert would have to maintain.
 */
export async function deleteEventsBefore(tx: Tx, before: number): Promise<number> {
  const firstRecent = await tx
    .selectFrom('events')
    .select('id')
    .where('created_at', '>=', before)
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
  let query = tx.deleteFrom('events');
  if (firstRecent) query = query.where('id', '<', firstRecent.id);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}
