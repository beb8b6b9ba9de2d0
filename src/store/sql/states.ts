import { sql } from 'kysely';
import type { JobState } from '../schema.js';

/**
 * Job states as SQL literals rather than bound parameters: the partial indexes (`where state = 'queued'`)
 * can only serve a query whose condition the planner sees is the same literal.
 */
export const stateLiteral = <S extends JobState>(state: S) => sql<S>`${sql.lit(state)}`;

export const RUNNING = stateLiteral('running');
export const DELAYED = stateLiteral('delayed');
