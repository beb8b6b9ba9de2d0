import type { Insertable } from 'kysely';
import type { Tx } from '../transaction.js';
import type { WorkersTable, WorkerRow } from '../schema.js';

export async function upsertWorker(tx: Tx, worker: Insertable<WorkersTable>) {
  const { id: _id, ...changes } = worker;
  await tx
    .insertInto('workers')
    .values(worker)
    .onConflict((oc) => oc.column('id').doUpdateSet(changes))
    .execute();
}

export async function selectWorkers(tx: Tx, seenSince: number): Promise<WorkerRow[]> {
  return tx.selectFrom('workers').selectAll().where('heartbeat_at', '>=', seenSince).orderBy('started_at').execute();
}

export async function deleteWorker(tx: Tx, id: string) {
  await tx.deleteFrom('workers').where('id', '=', id).execute();
}

export async function deleteStaleWorkers(tx: Tx, before: number) {
  await tx.deleteFrom('workers').where('heartbeat_at', '<', before).execute();
}
