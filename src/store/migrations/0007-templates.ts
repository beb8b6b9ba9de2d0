import type { Kysely } from 'kysely';

/**
 * Job templates: named job settings (a type and its options as JSON text) that a vendor keeps to submit by
 * name. A name is unique per vendor, which the primary key says; the built-in templates are not rows
 * (src/engine/builtin-templates.ts). A job submitted by template records the template's name: the job's own
 * type and options are what ran, the name says where they came from.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('template', 'text').execute();
  await db.schema
    .createTable('templates')
    .addColumn('vendor_id', 'text', (c) => c.notNull().references('vendors.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('options', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('templates_pkey', ['vendor_id', 'name'])
    .execute();
}
