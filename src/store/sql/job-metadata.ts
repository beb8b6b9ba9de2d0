import { CompiledQuery } from 'kysely';
import { METADATA_INDEX } from '@pixq/client/schemas';
import type { Dialect } from '../connect.js';
import { valueRows } from './placeholders.js';
import type { Tx } from '../transaction.js';
import type { JobMetadataRow, JobRow } from '../schema.js';

const CHUNK = 400; // rows per INSERT: 4 parameters each, well under both databases' bound-parameter limits
const INSERT = 'insert into job_metadata (key, value, vendor_id, job_id) values';

/**
 * The index entries of jobs' metadata: each top-level string, number or boolean, as the string a filter
 * compares it with, when key and value fit METADATA_INDEX's bounds. Nested values, nulls and longer strings
 * stay in the job's metadata only; no filter can find them.
 */
export function metadataEntries(jobs: Pick<JobRow, 'id' | 'vendor_id' | 'metadata'>[]): JobMetadataRow[] {
  return jobs.flatMap((job) => {
    if (job.metadata === null) return [];
    const metadata = JSON.parse(job.metadata) as unknown;
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return [];
    return Object.entries(metadata).flatMap(([key, raw]) => {
      if (!['string', 'number', 'boolean'].includes(typeof raw)) return [];
      const value = String(raw);
      if (key.length > METADATA_INDEX.maxKeyLength || value.length > METADATA_INDEX.maxValueLength) return [];
      return [{ key, value, vendor_id: job.vendor_id, job_id: job.id }];
    });
  });
}

/** Indexes new jobs' metadata; written by hand like the job insert it runs beside (see insert-jobs.ts). */
export async function insertJobMetadata(
  tx: Tx,
  dialect: Dialect,
  jobs: Pick<JobRow, 'id' | 'vendor_id' | 'metadata'>[],
) {
  const entries = metadataEntries(jobs);
  for (let i = 0; i < entries.length; i += CHUNK) {
    const chunk = entries.slice(i, i + CHUNK);
    const parameters = chunk.flatMap((e) => [e.key, e.value, e.vendor_id, e.job_id]);
    await tx.executeQuery(CompiledQuery.raw(`${INSERT} ${valueRows(dialect, chunk.length, 4)}`, parameters));
  }
}

/** Removes the index entries of jobs about to be deleted. */
export async function deleteJobMetadata(tx: Tx, jobIds: string[]) {
  if (jobIds.length === 0) return;
  await tx.deleteFrom('job_metadata').where('job_id', 'in', jobIds).execute();
}
