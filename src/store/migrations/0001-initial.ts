import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../connect.js';

/** The first schema. Indexes are named after the query they serve. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const bigint = 'bigint' as const;
  await db.schema
    .createTable('vendors')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('weight', 'double precision', (c) => c.notNull().defaultTo(1))
    .addColumn('max_running', 'integer')
    .addColumn('max_queued', 'integer')
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
    .addColumn('rate_limits', 'text')
    .addColumn('virtual_time', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('options', 'text', (c) => c.notNull())
    .addColumn('input_blob', 'text')
    .addColumn('input_url', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('backoff_base_ms', 'integer', (c) => c.notNull())
    .addColumn('backoff_max_ms', 'integer', (c) => c.notNull())
    .addColumn('timeout_ms', 'integer', (c) => c.notNull())
    .addColumn('run_at', bigint, (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', bigint)
    .addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('progress_percent', 'double precision', (c) => c.notNull().defaultTo(0))
    .addColumn('progress_stage', 'text')
    .addColumn('progress_message', 'text')
    .addColumn('result', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('error_retryable', 'integer')
    .addColumn('idempotency_key', 'text')
    .addColumn('batch_id', 'text')
    .addColumn('metadata', 'text')
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('started_at', bigint)
    .addColumn('finished_at', bigint)
    .addColumn('updated_at', bigint, (c) => c.notNull())
    .execute();
  // Most indexes are partial, by state: a job changes state three or four times, and each change should
  // touch only the index of the state it leaves and the one it enters. Queries name the state as a literal
  // (see sql/states.ts) so both databases can use them.
  const index = (name: string, on: string, where: string) =>
    sql.raw(`create index ${name} on jobs ${on} where ${where}`).execute(db);
  // The claim: a vendor's next ready job by priority then age (all types, or one type).
  await index('jobs_queued_by_vendor', '(vendor_id, priority desc, id)', "state = 'queued'");
  await index('jobs_queued_by_vendor_type', '(vendor_id, type, priority desc, id)', "state = 'queued'");
  // Running jobs: caps per vendor (and, scanning this small set, per type and the reaper's expired leases:
  // there are never more running jobs than worker slots).
  await index('jobs_running', '(vendor_id)', "state = 'running'");
  await index('jobs_delayed_by_run_at', '(run_at)', "state = 'delayed'");
  await index('jobs_input_blob', '(input_blob)', 'input_blob is not null');
  await index('jobs_batch', '(batch_id)', 'batch_id is not null');
  // Retention and recent-timing stats.
  await db.schema.createIndex('jobs_finished').on('jobs').columns(['finished_at']).execute();
  // Listing a vendor's jobs, newest first.
  await db.schema.createIndex('jobs_by_vendor').on('jobs').columns(['vendor_id', 'id']).execute();
  await db.schema
    .createIndex('jobs_idempotency')
    .on('jobs')
    .columns(['vendor_id', 'idempotency_key'])
    .unique()
    .execute();

  await db.schema
    .createTable('job_outputs')
    .addColumn('job_id', 'text', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('blob', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('job_outputs_pk', ['job_id', 'idx'])
    .execute();
  await db.schema.createIndex('job_outputs_blob').on('job_outputs').columns(['blob']).execute();

  await db.schema
    .createTable('job_types')
    .addColumn('type', 'text', (c) => c.primaryKey())
    .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_running', 'integer')
    .addColumn('rate_limit', 'integer')
    .addColumn('rate_window_ms', 'integer')
    .addColumn('window_start', bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('window_count', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('scheduler')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('virtual_time', 'double precision', (c) => c.notNull())
    .execute();
  await sql`insert into scheduler (id, virtual_time) values (1, 0)`.execute(db);

  await db.schema
    .createTable('events')
    .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('vendor_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('batch_id', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_vendor').on('events').columns(['vendor_id', 'id']).execute();

  await db.schema
    .createTable('workers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    .addColumn('started_at', bigint, (c) => c.notNull())
    .addColumn('heartbeat_at', bigint, (c) => c.notNull())
    .addColumn('running', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('slots', 'text', (c) => c.notNull())
    .addColumn('stopping', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('revoked_at', bigint)
    .execute();

  await db.schema
    .createTable('uploads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('blob', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('uploads_blob').on('uploads').columns(['blob']).execute();

  await db.schema
    .createTable('rate_buckets')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('window_start', bigint, (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
}
