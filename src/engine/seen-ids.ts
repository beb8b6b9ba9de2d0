/**
 * The ids of the most recent events a reader has handled, to drop repeats without requiring order.
 * On PostgreSQL event ids come from a sequence taken before commit, so concurrent transactions commit, and
 * notify, out of id order: a reader that dropped every id below the highest it had seen lost events. Ids
 * further back than `capacity` from the newest are forgotten (a repeat that old is passed on again).
 */
export class SeenIds {
  private readonly ids = new Set<number>();
  private readonly order: number[] = [];
  private head = 0;
  /** The highest id handled so far, or 0. */
  newest = 0;

  constructor(private readonly capacity = 10_000) {}

  /** True the first time an id is offered, false for a repeat. */
  add(id: number): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    this.order.push(id);
    if (id > this.newest) this.newest = id;
    if (this.ids.size > this.capacity) this.ids.delete(this.order[this.head++]);
    if (this.head > this.capacity) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
    return true;
  }
}
