import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A private PostgreSQL cluster for fault tests: initdb into a temp dir as the unprivileged user `pixqpg`,
 * started on a free loopback port with its socket in /tmp. Tests may stop, start and restart it at will;
 * the machine's own server is never touched. Needs root (to run the server as `pixqpg`) and the
 * PostgreSQL binaries; `privatePostgresUnavailable()` says why not, for a skip with a printed reason.
 */
export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/pixq (trust auth, loopback only). */
  url: string;
  port: number;
  /** `fast` disconnects clients and shuts down cleanly; `immediate` is a crash (recovery at the next start). */
  restart(mode?: StopMode): Promise<void>;
  stop(mode?: StopMode): Promise<void>;
  start(): Promise<void>;
  /** Stops the server (if running) and deletes the cluster's directory: call it at the end of the run. */
  destroy(): Promise<void>;
}

export type StopMode = 'smart' | 'fast' | 'immediate';

const BIN_DIR = process.env.PIXQ_PG_BIN_DIR ?? '/usr/lib/postgresql/15/bin';
const USER = 'pixqpg';

/** Undefined when a private cluster can run here; otherwise the reason it cannot. */
export function privatePostgresUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the private PostgreSQL cluster runs as user pixqpg, which needs root';
  if (!fs.existsSync(path.join(BIN_DIR, 'initdb'))) return `no PostgreSQL binaries in ${BIN_DIR} (set PIXQ_PG_BIN_DIR)`;
  return undefined;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const reason = privatePostgresUnavailable();
  if (reason) throw new Error(reason);
  ensureUser();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pixq-pg-'));
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'data');
  const logFile = path.join(root, 'server.log');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.writeFileSync(logFile, '');
  execFileSync('chown', ['-R', `${USER}:${USER}`, root]);
  asUser(`${BIN_DIR}/initdb -D ${dataDir} -U postgres --auth=trust --no-sync -E UTF8`);
  const port = await freePort();
  const pgCtl = (args: string) => asUser(`${BIN_DIR}/pg_ctl -D ${dataDir} ${args}`);
  let running = false;

  const start = async () => {
    // fsync off: the cluster lives for one test run; a crash stop (`immediate`) still recovers from the WAL.
    pgCtl(
      `-o "-p ${port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" -l ${logFile} -w -t 60 start`,
    );
    running = true;
  };
  const stop = async (mode: StopMode = 'fast') => {
    if (!running) return;
    pgCtl(`-m ${mode} -w -t 60 stop`);
    running = false;
  };
  await start();
  const serverUrl = `postgres://postgres@127.0.0.1:${port}`;
  const admin = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await admin.connect();
  await admin.query('create database pixq');
  await admin.end();

  return {
    url: `${serverUrl}/pixq`,
    port,
    start,
    stop,
    async restart(mode: StopMode = 'fast') {
      await stop(mode);
      await start();
    },
    async destroy() {
      await stop('immediate').catch(() => undefined);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function ensureUser() {
  try {
    execFileSync('id', [USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', USER]);
  }
}

function asUser(command: string) {
  execFileSync('su', [USER, '-c', command], { stdio: ['ignore', 'ignore', 'pipe'], cwd: '/tmp' });
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
