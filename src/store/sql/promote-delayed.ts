import type { Tx } from '../transaction.js';
import type { JobRow } from '../schema.js';
import { DELAYED } from './states.js';

/** Delayed jobs whose time has come become queued. */
export async function promoteDelayed(tx: Tx, now: number, limit: number): Promise<JobRow[]> {
  const due = await tx
    .selectFrom('jobs')
    .select('id')
    .where('state', '=', DELAYED)
    .where('run_at', '<=', now)
    .limit(limit)
    .execute();
  if (due.length === 0) return [];
  return tx
    .updateTable('jobs')
    .set({ state: 'queued', updated_at: now })
    .where(
      'id',
      'in',
      due.map((d) => d.id),
    )
    .where('state', '=', 'delayed')
    .returningAll()
    .execute();
}
