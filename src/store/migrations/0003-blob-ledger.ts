import { sql, type Kysely } from 'kysely';

/**
 * The blob ledger: one row per stored blob that the sweep may have to delete one day. `sweep_after` is when
 * the sweep should next check whether anything refers to the blob (null: something did at the last check).
 * Writers push it forward before their bytes land; deleting a reference sets it. Blobs already referenced
 * when this migration runs get a row each, to be checked once a day from now.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('blobs')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('sweep_after', 'bigint')
    .execute();
  await sql`create index blobs_sweep_after on blobs (sweep_after) where sweep_after is not null`.execute(db);
  const checkAt = sql`cast(${Date.now() + 24 * 3600_000} as bigint)`;
  await sql`insert into blobs (key, sweep_after)
    select blob, ${checkAt} from uploads
    union select input_blob, ${checkAt} from jobs where input_blob is not null
    union select blob, ${checkAt} from job_outputs`.execute(db);
}
