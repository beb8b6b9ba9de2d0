/**
 * Everything the benchmark creates (databases, temp dirs, Redis keys, child processes) registers its undo
 * here, so it is removed on success, on error and on Ctrl-C alike.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Undo = () => Promise<void> | void;

const stack: { label: string; undo: Undo }[] = [];

/** Registers `undo`; undos run last-in first-out, so a store closes before its database is dropped. */
export function defer(label: string, undo: Undo): void {
  stack.push({ label, undo });
}

/** A fresh directory under the OS temp dir, removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  defer(`remove ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs every registered undo once; a failing one is reported and does not stop the others. */
export async function cleanUp(): Promise<void> {
  for (let item = stack.pop(); item; item = stack.pop()) {
    try {
      await item.undo();
    } catch (err) {
      console.error(`cleanup "${item.label}" failed:`, err instanceof Error ? err.message : err);
    }
  }
}

/** On SIGINT/SIGTERM, cleans up before exiting instead of leaving databases and children behind. */
export function cleanUpOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
}
