/**
 * Variant bytes kept in this process for hits, least recently used out first, bounded in bytes. A hit served
 * from here costs no store read and no blob read. Entries are immutable (a key names one content), so every
 * process may keep its own copy without any invalidation.
 */
export class MemoryCache<T extends { bytes: Buffer }> {
  private readonly entries = new Map<string, T>();
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      // Map order is insertion order: moving the entry to the end makes the first one the least recent.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Keeps `entry` unless it alone would take more than an eighth of the cache. */
  set(key: string, entry: T): void {
    if (entry.bytes.length > this.maxBytes / 8 || this.entries.has(key)) return;
    this.entries.set(key, entry);
    this.size += entry.bytes.length;
    for (const [oldest, old] of this.entries) {
      if (this.size <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.size -= old.bytes.length;
    }
  }
}
