import { sql, type Kysely } from 'kysely';

/**
 * Two indexes of 0001 held an entry for every job although only some jobs have a value: unfinished jobs
 * (finished_at null) and jobs without an idempotency key. Every enqueue paid for the second, and every
 * finish moved an entry in the first. As partial indexes they hold only the jobs that have a value; the
 * queries that use them compare the column, which both databases read as implying `is not null`.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop index jobs_finished`.execute(db);
  await sql`create index jobs_finished on jobs (finished_at) where finished_at is not null`.execute(db);
  await sql`drop index jobs_idempotency`.execute(db);
  await sql`create unique index jobs_idempotency on jobs (vendor_id, idempotency_key) where idempotency_key is not null`.execute(
    db,
  );
}
