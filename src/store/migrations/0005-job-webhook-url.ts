import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

/**
 * One-off callbacks: a job may name its own `webhook_url`, reported to when it finishes and signed with its
 * vendor's callback secret (one per vendor, rotated like an endpoint's). Such a delivery has no endpoint: it
 * holds its `url` instead, and exactly one of the two is set. PostgreSQL relaxes `endpoint_id` in place;
 * SQLite cannot drop a NOT NULL, so there the table is rebuilt (its documented procedure) in a transaction
 * of its own, since Kysely runs SQLite migrations without one. Existing rows are endpoint deliveries and
 * stay valid as they are.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bigint = 'bigint' as const;
  await db.schema.alterTable('jobs').addColumn('webhook_url', 'text').execute();
  await db.schema
    .createTable('webhook_callback_secrets')
    .addColumn('vendor_id', 'text', (c) => c.primaryKey().references('vendors.id'))
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_until', bigint)
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();

  if (dialect === 'postgres') {
    await db.schema
      .alterTable('webhook_deliveries')
      .alterColumn('endpoint_id', (c) => c.dropNotNull())
      .execute();
    await db.schema.alterTable('webhook_deliveries').addColumn('url', 'text').execute();
    await sql`alter table webhook_deliveries add constraint webhook_deliveries_one_target check ((endpoint_id is null) <> (url is null))`.execute(
      db,
    );
  } else {
    await db.transaction().execute(rebuildSqliteDeliveries);
  }
  await db.schema.createIndex('webhook_deliveries_by_job').on('webhook_deliveries').columns(['job_id', 'id']).execute();
}

async function rebuildSqliteDeliveries(db: Kysely<unknown>): Promise<void> {
  const bigint = 'bigint' as const;
  await db.schema
    .createTable('webhook_deliveries_next')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('endpoint_id', 'text', (c) => c.references('webhook_endpoints.id').onDelete('cascade'))
    .addColumn('url', 'text')
    .addColumn('vendor_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('batch_id', 'text')
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', bigint, (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', bigint)
    .addColumn('last_status', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('last_attempt_at', bigint)
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('finished_at', bigint)
    .addCheckConstraint('webhook_deliveries_one_target', sql`(endpoint_id is null) <> (url is null)`)
    .execute();
  const columns = sql.raw(
    'id, endpoint_id, vendor_id, event_type, job_id, batch_id, state, attempts, next_attempt_at, lease_owner, ' +
      'lease_expires_at, last_status, last_error, last_attempt_at, created_at, finished_at',
  );
  await sql`insert into webhook_deliveries_next (${columns}) select ${columns} from webhook_deliveries`.execute(db);
  await db.schema.dropTable('webhook_deliveries').execute();
  await db.schema.alterTable('webhook_deliveries_next').renameTo('webhook_deliveries').execute();
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where state = 'pending'`.execute(
    db,
  );
  await db.schema
    .createIndex('webhook_deliveries_by_endpoint')
    .on('webhook_deliveries')
    .columns(['endpoint_id', 'id'])
    .execute();
}
