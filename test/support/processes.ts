import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { openEngine, type Engine } from '../../src/engine/index.js';
import { countJobs, DEFAULT_OPTIONS } from './engine.js';
import { dropDatabase, type StoreTarget } from './stores.js';
import { TEST_MODELS_DIR } from './models.js';

const CLI = path.resolve(import.meta.dirname, 'pixq-cli.ts');

export interface PixqProcess {
  child: ChildProcess;
  pid: number;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Everything written to stderr so far. */
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `pixq <args>` from source as a real child process, collecting its JSON log lines. */
export function spawnPixq(args: string[], env: Record<string, string | undefined>): PixqProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (code) console.error(`pixq ${args.join(' ')} exited ${code}: ${stderr}`);
      resolve(code);
    }),
  );
  return { child, pid: child.pid!, logs, stderr: () => stderr, exited };
}

export async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string) {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Samples how many jobs each vendor has running until `done` holds; returns each vendor's peak and the samples. */
export async function peakRunning(engine: Engine, vendorIds: string[], done: () => Promise<boolean>) {
  const peaks = vendorIds.map(() => 0);
  let samples = 0;
  await waitUntil(
    async () => {
      for (const [i, id] of vendorIds.entries()) peaks[i] = Math.max(peaks[i], await countJobs(engine, id, 'running'));
      samples++;
      return done();
    },
    90_000,
    'the jobs to finish',
  );
  return { peaks, samples };
}

/** Waits for a worker process to log that it started. */
export function workerReady(p: PixqProcess, timeoutMs = 90_000) {
  return waitUntil(() => p.logs.some((l) => l.msg === 'worker started'), timeoutMs, `worker ${p.pid} to start`);
}

/** Waits for a process serving the API to log its address; returns its base URL (`http://127.0.0.1:<port>`). */
export async function apiReady(p: PixqProcess, timeoutMs = 120_000): Promise<string> {
  const listening = () => p.logs.find((l) => l.msg === 'API listening');
  await waitUntil(() => listening() !== undefined, timeoutMs, `the API of ${p.pid} to listen`);
  return String(listening()!.address);
}

export async function stopAll(processes: PixqProcess[]) {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  await Promise.all(processes.map((p) => p.exited));
}

/**
 * A fresh store with an engine for the test's own reads and writes, and three `pixq worker` processes on it.
 * `close` stops the workers, closes the engine and drops the PostgreSQL database.
 */
export async function workerCluster(target: StoreTarget, env: Record<string, string>) {
  const location = await target.fresh();
  const engine = await openEngine(location, DEFAULT_OPTIONS);
  const workerEnv = {
    PIXQ_DATA_DIR: location.dataDir,
    PIXQ_MODELS_DIR: TEST_MODELS_DIR,
    DATABASE_URL: location.databaseUrl,
    PIXQ_ENABLE_NOOP: '1',
    ...env,
  };
  const workers = [0, 1, 2].map(() => spawnPixq(['worker'], workerEnv));
  try {
    await Promise.all(workers.map((w) => workerReady(w)));
  } catch (err) {
    // Workers that start after the deadline would otherwise run on after the test.
    await stopAll(workers);
    await engine.close();
    throw err;
  }
  return {
    engine,
    workers,
    spawnWorker: () => spawnPixq(['worker'], workerEnv),
    async close() {
      await stopAll(workers);
      await engine.close();
      await dropDatabase(location.databaseUrl);
    },
  };
}
