import { monotonicFactory } from 'ulidx';

const ulid = monotonicFactory();

/** Sortable unique ids (ULID): ordering by id is ordering by creation time, which FIFO claims rely on. */
export function newId(): string {
  return ulid();
}
