import { sql, type Kysely } from 'kysely';

/**
 * Assets and their delivery.
 * - `assets`: a vendor's named, durable image; `(vendor_id, path)` is the primary key. `version` is derived from
 *   the bytes (see src/engine/assets.ts), so a URL carrying it names exactly one content for ever. `job_id` is
 *   the job whose output it is, if any; that job may be gone (retention deletes jobs, never assets).
 * - `asset_variants`: the delivery cache: one rendered variant per key (a hash of the source blob, the canonical
 *   options and the format), with its blob and when it was last served, for least-recently-used eviction.
 *   `delivery_cache` holds the bytes the variants take, kept in the same transactions as the rows.
 * - `vendor_delivery`: each vendor's delivery key and salt (hex, as imgproxy takes them), the pair a rotation
 *   replaced and until when it still verifies, the public and presets-only switches and the presets (JSON).
 * - vendors get `max_storage_bytes` (null: the configured default) and `storage_bytes`, what their uploads and
 *   assets take, kept in the transactions that add or remove them; jobs get `publish_path`, where their first
 *   output goes when they succeed, and `publish_error` (JSON code and message) when that publish was refused.
 * The blob indexes let the ledger's sweep ask whether an asset or a variant still refers to a blob.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('assets')
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('blob', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('assets_pkey', ['vendor_id', 'path'])
    .execute();
  await db.schema.createIndex('assets_blob').on('assets').column('blob').execute();
  await sql`create index assets_job on assets (job_id) where job_id is not null`.execute(db);

  await db.schema
    .createTable('asset_variants')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('blob', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('width', 'integer', (c) => c.notNull())
    .addColumn('height', 'integer', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('asset_variants_blob').on('asset_variants').column('blob').execute();
  await db.schema.createIndex('asset_variants_last_used').on('asset_variants').column('last_used_at').execute();
  await db.schema
    .createTable('delivery_cache')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into delivery_cache (id, bytes) values (1, 0)`.execute(db);

  await db.schema
    .createTable('vendor_delivery')
    .addColumn('vendor_id', 'text', (c) => c.primaryKey().references('vendors.id'))
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('salt', 'text', (c) => c.notNull())
    .addColumn('previous_key', 'text')
    .addColumn('previous_salt', 'text')
    .addColumn('previous_until', 'bigint')
    .addColumn('public', 'integer', (c) => c.notNull())
    .addColumn('presets_only', 'integer', (c) => c.notNull())
    .addColumn('presets', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('vendors').addColumn('max_storage_bytes', 'bigint').execute();
  await db.schema
    .alterTable('vendors')
    .addColumn('storage_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update vendors set storage_bytes = coalesce(
    (select sum(u.bytes) from uploads u where u.vendor_id = vendors.id), 0)`.execute(db);
  await db.schema.alterTable('jobs').addColumn('publish_path', 'text').execute();
  await db.schema.alterTable('jobs').addColumn('publish_error', 'text').execute();
}
