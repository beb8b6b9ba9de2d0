import { OnnxHost, type OnnxHostOptions } from './onnx-worker.js';

/**
 * Lazily opened ONNX sessions, one per model, shared by all jobs of a process and closed after `idleMs`
 * without use: each lives in a child process, which exits then and hands back all its memory (a 1024 px
 * model's process peaks near 1 GB).
 */
export interface SessionCacheOptions extends OnnxHostOptions {
  idleMs: number;
  /** Turns a model file onnxruntime refuses into the error jobs should see. */
  loadFailed?: (file: string, err: Error) => Error;
  /** Called once an idle session's process has exited. */
  released?: () => void;
}

interface Entry {
  host: Promise<OnnxHost>;
  users: number;
  timer?: NodeJS.Timeout;
}

export interface SessionUse<T> {
  value: T;
  /** Whether this call had to load the model (the first job after start or after an idle release). */
  cold: boolean;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: SessionCacheOptions) {}

  /**
   * Runs `work` with the session for `key`, loading it from the file `locate` returns if none is open.
   * A failed load is not cached, so a model file placed later is picked up by the next job.
   */
  async use<T>(
    key: string,
    locate: () => Promise<string>,
    work: (host: OnnxHost) => Promise<T>,
  ): Promise<SessionUse<T>> {
    let entry = this.entries.get(key);
    const cold = entry === undefined;
    if (!entry) {
      entry = { host: locate().then((file) => this.open(file)), users: 0 };
      this.entries.set(key, entry);
      const created = entry;
      const forget = () => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      };
      // A process that dies while idle is forgotten too, so that the next job loads the model afresh.
      created.host.then((host) => host.exited.then(forget), forget);
    }
    clearTimeout(entry.timer);
    entry.users++;
    let host: OnnxHost | undefined;
    try {
      host = await entry.host;
      return { value: await work(host), cold };
    } finally {
      // A crashed process is dropped at once, so that the next job loads the model afresh.
      if (host && !host.alive && this.entries.get(key) === entry) this.entries.delete(key);
      entry.users--;
      if (entry.users === 0) this.scheduleRelease(key, entry);
    }
  }

  private async open(file: string): Promise<OnnxHost> {
    try {
      return await OnnxHost.open(file, this.opts);
    } catch (err) {
      throw this.opts.loadFailed?.(file, err as Error) ?? err;
    }
  }

  /** Models currently loaded or loading. */
  get loaded(): string[] {
    return [...this.entries.keys()];
  }

  /** Process ids of the loaded sessions' child processes. */
  async pids(): Promise<number[]> {
    const hosts = await Promise.all([...this.entries.values()].map((e) => e.host.catch(() => undefined)));
    return hosts.flatMap((host) => (host?.pid === undefined ? [] : [host.pid]));
  }

  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      entries.map(async (entry) => {
        clearTimeout(entry.timer);
        const host = await entry.host.catch(() => undefined);
        await host?.close();
      }),
    );
  }

  private scheduleRelease(key: string, entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void this.release(key, entry), this.opts.idleMs);
    entry.timer.unref();
  }

  private async release(key: string, entry: Entry): Promise<void> {
    if (this.entries.get(key) !== entry || entry.users > 0) return;
    // With no users left, a run still in the child is one whose job was aborted: it dies with the process.
    this.entries.delete(key);
    const host = await entry.host.catch(() => undefined);
    await host?.close();
    this.opts.released?.();
  }
}
