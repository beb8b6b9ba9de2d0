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
  execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: REPO });
  const child = spawnCli(databaseUrl);
  const ready = await untilRunning(child);
  if (!ready.ok) throw new Error(`\`pixq start\` did not come up (${ready.reason})`);
  await sleep(IDLE_MS);
  const mb = readRssMb(child.pid!);
  await stop(child);
  return mb;
}

function spawnCli(databaseUrl?: string): ChildProcess {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PIXQ_DATA_DIR: tempDir('pixq-rss-'),
    PORT: '0',
    HOST: '127.0.0.1',
    PIXQ_ADMIN_KEY: 'bench-admin-key-0123456789',
    PIXQ_LOG_LEVEL: 'info',
    // A benchmark must not fetch models from the network.
    PIXQ_MODEL_DOWNLOAD: '0',
  };
  delete env.DATABASE_URL;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  // `node` itself (not an npx wrapper), so the pid whose RSS is read is the server.
  const child = spawn(process.execPath, ['bin/pixq.js', 'start'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  defer(`stop pixq start (pid ${child.pid})`, () => stop(child));
  return child;
}

/** Resolves once the process logs "pixq running", or with the reason it did not. */
function untilRunning(child: ChildProcess): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    let stderr = '';
    const timer = setTimeout(() => resolve({ ok: false, reason: 'timed out' }), READY_TIMEOUT_MS);
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

/** SIGTERM (pixq drains and exits 0), SIGKILL if it has not exited within 10 s. Safe to call twice. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
