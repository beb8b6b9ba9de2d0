import type { Tx } from '../transaction.js';
import type { JobTypeRow } from '../schema.js';

export interface JobTypeSettings {
  paused?: boolean;
  maxRunning?: number | null;
  rateLimit?: { limit: number; windowMs: number } | null;
}

/** Creates or changes the settings of one job type (pause, global cap, global rate limit). */
export async function upsertJobType(tx: Tx, type: string, settings: JobTypeSettings): Promise<JobTypeRow> {
  const changes = {
    ...(settings.paused !== undefined && { paused: settings.paused ? 1 : 0 }),
    ...(settings.maxRunning !== undefined && { max_running: settings.maxRunning }),
    ...(settings.rateLimit !== undefined && {
      rate_limit: settings.rateLimit?.limit ?? null,
      rate_window_ms: settings.rateLimit?.windowMs ?? null,
    }),
  };
  await tx
    .insertInto('job_types')
    .values({ type, paused: 0, window_start: 0, window_count: 0, ...changes })
    .onConflict((oc) => (Object.keys(changes).length ? oc.column('type').doUpdateSet(changes) : oc.doNothing()))
    .execute();
  return tx.selectFrom('job_types').selectAll().where('type', '=', type).executeTakeFirstOrThrow();
}

/** Writes a type's first settings (a processor's default rate limit); settings already there are kept. */
export async function insertJobTypeDefaults(
  tx: Tx,
  type: string,
  rateLimit: { limit: number; windowMs: number },
): Promise<void> {
  await tx
    .insertInto('job_types')
    .values({
      type,
      paused: 0,
      window_start: 0,
      window_count: 0,
      rate_limit: rateLimit.limit,
      rate_window_ms: rateLimit.windowMs,
    })
    .onConflict((oc) => oc.column('type').doNothing())
    .execute();
}

export async function selectJobTypes(tx: Tx): Promise<JobTypeRow[]> {
  return tx.selectFrom('job_types').selectAll().orderBy('type').execute();
}
