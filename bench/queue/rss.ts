import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { defer, tempDir } from './cleanup.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

const READY_TIMEOUT_MS = 30_000;
const IDLE_MS = 5_000;

/**
 * Idle resident memory of a real `pixq start` process (API and workers), as users run it: the compiled CLI
 * (`node bin/pixq.js`), built first so it matches the source.
 */
export async function idleRss(databaseUrl?: string): Promise<number> {
  buildCli();
  const child = spawnCli(databaseUrl);
  const ready = await untilRunning(child);
  if (!ready.ok) throw new Error(`\`pixq start\` did not come up (${ready.reason})`);
  await sleep(IDLE_MS);
  const mb = readRssMb(child.pid!);
  await stop(child);
  return mb;
}

/** Compiles the server to dist/, so that `node bin/pixq.js` runs the current source. */
export function buildCli(): void {
  execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: REPO,
  });
}

/**
 * `node bin/pixq.js start` on an empty data dir (SQLite unless `databaseUrl`), `overrides` added to its env; `repo`
 * is the checkout whose built CLI runs (another one, to compare with an earlier version).
 */
export function spawnCli(databaseUrl?: string, overrides: NodeJS.ProcessEnv = {}, repo = REPO): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIXQ_DATA_DIR: tempDir('pixq-rss-'),
    PORT: '0',
    HOST: '127.0.0.1',
    PIXQ_ADMIN_KEY: 'bench-admin-key-0123456789',
    PIXQ_LOG_LEVEL: 'info',
    // A benchmark must not fetch models from the network.
    PIXQ_MODEL_DOWNLOAD: '0',
    ...overrides,
  };
  delete env.DATABASE_URL;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  // `node` itself (not an npx wrapper), so the pid whose RSS is read is the server.
  const child = spawn(process.execPath, ['bin/pixq.js', 'start'], {
    cwd: repo,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  defer(`stop pixq start (pid ${child.pid})`, () => stop(child));
  return child;
}

/** Resolves once the process logs "pixq running", or with the reason it did not. */
export function untilRunning(
  child: ChildProcess,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    let stderr = '';
    const timer = setTimeout(() => resolve({ ok: false, reason: 'timed out' }), timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('"pixq running"')) {
        clearTimeout(timer);
        resolve({ ok: true });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `exit ${code}: ${stderr.trim().split('\n').pop() ?? ''}` });
    });
  });
}

export function readRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for pid ${pid}`);
  return kb / 1024;
}

/** The processes of the tree under `pid`, itself included. */
export function treePids(pid: number): number[] {
  try {
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    const children = tasks.flatMap((task) =>
      fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(' ').filter(Boolean),
    );
    return [pid, ...children.flatMap((child) => treePids(Number(child)))];
  } catch {
    return [];
  }
}

/** Resident memory of `pid` and all its descendants, in MB; 0 once it has exited. */
export function treeRssMb(pid: number): number {
  let total = 0;
  for (const member of treePids(pid)) {
    try {
      total += readRssMb(member);
    } catch {
      // exited since it was listed
    }
  }
  return total;
}

/** User plus system CPU milliseconds used so far by `pid` and its live descendants (Linux clock ticks of 10 ms). */
export function treeCpuMs(pid: number): number {
  let total = 0;
  for (const member of treePids(pid)) {
    try {
      const fields = fs.readFileSync(`/proc/${member}/stat`, 'utf8').split(') ')[1].split(' ');
      total += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // exited since it was listed
    }
  }
  return total;
}

/** Samples the tree's RSS every `everyMs` until stopped; `stop()` answers the highest sum seen, in MB. */
export function watchTreePeak(pid: number, everyMs = 50): { stop: () => number } {
  let peak = treeRssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, treeRssMb(pid))), everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, treeRssMb(pid));
    },
  };
}

/** SIGTERM (pixq drains and exits 0), SIGKILL if it has not exited within 10 s. Safe to call twice. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
