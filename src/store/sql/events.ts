import { CompiledQuery } from 'kysely';
import type { Dialect } from '../connect.js';
import { valueRows } from './placeholders.js';
import type { Tx } from '../transaction.js';

export interface StoredEvent {
  vendor_id: string;
  job_id: string;
  batch_id: string | null;
  payload: string;
  created_at: number;
}

const CHUNK = 300;
const COLUMNS = 5;

/**
 * Appends events and returns their ids in order (the ids SSE clients resume from). Every job writes two or
 * more events, so the statement is built by hand: the query builder's per-value work cost more than the
 * insert. On SQLite the ids need no RETURNING: one statement under the write lock gets consecutive
 * AUTOINCREMENT ids in row order, ending at the last insert id.
 */
export async function insertEvents(tx: Tx, dialect: Dialect, events: StoredEvent[]): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < events.length; i += CHUNK) {
    const chunk = events.slice(i, i + CHUNK);
    const parameters = chunk.flatMap((e) => [e.vendor_id, e.job_id, e.batch_id, e.payload, e.created_at]);
    const text = `insert into events (vendor_id, job_id, batch_id, payload, created_at) values ${valueRows(dialect, chunk.length, COLUMNS)}`;
    if (dialect === 'postgres') {
      const { rows } = await tx.executeQuery<{ id: number }>(CompiledQuery.raw(`${text} returning id`, parameters));
      ids.push(...rows.map((r) => Number(r.id)));
    } else {
      const { insertId } = await tx.executeQuery(CompiledQuery.raw(text, parameters));
      const last = Number(insertId);
      for (let id = last - chunk.length + 1; id <= last; id++) ids.push(id);
    }
  }
  return ids;
}

export interface EventFilter {
  /** One vendor's events; every vendor's when absent (the admin's stream). */
  vendorId?: string;
  afterId: number;
  /** No event above this id (the SQLite bus reads a gap between ids it knows). */
  upTo?: number;
  jobId?: string;
  batchId?: string;
  limit: number;
}

/**
 * A vendor's (or every vendor's) events after `afterId`, oldest first, optionally for one job or batch: what a
 * reconnecting stream missed, or, for all vendors, what the PostgreSQL event bus missed while LISTEN was down and
 * what other processes stored for the SQLite bus.
 */
export async function selectEventsAfter(tx: Tx, filter: EventFilter) {
  let query = tx.selectFrom('events').selectAll().where('id', '>', filter.afterId).orderBy('id').limit(filter.limit);
  if (filter.upTo !== undefined) query = query.where('id', '<=', filter.upTo);
  if (filter.vendorId !== undefined) query = query.where('vendor_id', '=', filter.vendorId);
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

/** The newest event id, or 0: where the event bus starts counting what it has seen. */
export async function selectLastEventId(tx: Tx): Promise<number> {
  const row = await tx
    .selectFrom('events')
    .select((eb) => eb.fn.max('id').as('id'))
    .executeTakeFirst();
  return Number(row?.id ?? 0);
}
