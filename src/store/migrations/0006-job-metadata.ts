import type { Kysely } from 'kysely';
import type { Dialect } from '../connect.js';
import type { Database } from '../schema.js';
import { insertJobMetadata } from '../sql/job-metadata.js';

const BACKFILL_PAGE = 1000;

/**
 * An index of jobs' top-level metadata values, so `GET /v1/jobs?metadata=recordId=42` finds a job among
 * millions without reading their JSON. The primary key serves that filter with newest-first paging: one
 * vendor's (or, for the admin, every vendor's) jobs with that key and value, by job id. The second index
 * serves deleting a job's entries with the job. Existing jobs are indexed here, a page at a time.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('job_metadata')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('vendor_id', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('job_metadata_pkey', ['key', 'value', 'vendor_id', 'job_id'])
    .execute();
  await db.schema.createIndex('job_metadata_job').on('job_metadata').column('job_id').execute();

  const tx = db as unknown as Kysely<Database>;
  for (let after = ''; ;) {
    const jobs = await tx
      .selectFrom('jobs')
      .select(['id', 'vendor_id', 'metadata'])
      .where('metadata', 'is not', null)
      .where('id', '>', after)
      .orderBy('id')
      .limit(BACKFILL_PAGE)
      .execute();
    if (jobs.length === 0) return;
    await insertJobMetadata(tx, dialect, jobs);
    after = jobs[jobs.length - 1].id;
  }
}
