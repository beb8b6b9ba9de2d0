/**
 * Lazily opened resources (a tesseract worker, the ZXing module) shared by all jobs of a process and closed
 * after `idleMs` without use. A failed open is not kept, so the next job tries again.
 */
interface Entry<T> {
  value: Promise<T>;
  users: number;
  timer?: NodeJS.Timeout;
}

export class IdleCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly idleMs: number,
    private readonly closeValue: (value: T) => Promise<void> | void,
  ) {}

  /** Runs `work` with the resource for `key`, opening it with `open` if none is held. */
  async use<R>(
    key: string,
    open: () => Promise<T>,
    work: (value: T) => Promise<R>,
  ): Promise<{ value: R; cold: boolean }> {
    let entry = this.entries.get(key);
    const cold = entry === undefined;
    if (!entry) {
      const created: Entry<T> = { value: open(), users: 0 };
      created.value.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
      this.entries.set(key, created);
      entry = created;
    }
    clearTimeout(entry.timer);
    entry.users++;
    try {
      return { value: await work(await entry.value), cold };
    } finally {
      entry.users--;
      if (entry.users === 0) this.scheduleRelease(key, entry);
    }
  }

  /** Keys held now (loaded or loading). */
  get loaded(): string[] {
    return [...this.entries.keys()];
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((entry) => this.closeEntry(entry)));
  }

  private scheduleRelease(key: string, entry: Entry<T>): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      if (this.entries.get(key) !== entry || entry.users > 0) return;
      this.entries.delete(key);
      void this.closeEntry(entry);
    }, this.idleMs);
    entry.timer.unref();
  }

  private async closeEntry(entry: Entry<T>): Promise<void> {
    clearTimeout(entry.timer);
    const value = await entry.value.catch(() => undefined);
    if (value !== undefined) await this.closeValue(value);
  }
}
