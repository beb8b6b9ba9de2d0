import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { tempDir } from './stores.js';
import { waitUntil } from './processes.js';

const VARNISHD = '/usr/sbin/varnishd';

/** Why the CDN tests cannot run here, or undefined when they can (Debian's varnish is installed). */
export function varnishMissing(): string | undefined {
  return existsSync(VARNISHD)
    ? undefined
    : `${VARNISHD} is not installed (Debian package varnish; .ci/run installs it)`;
}

/** A real Varnish on a free loopback port, in front of `origin` (host:port), with its built-in VCL. */
export interface Varnish {
  /** http://127.0.0.1:<port> */
  base: string;
  stop(): Promise<void>;
}

export async function startVarnish(origin: string): Promise<Varnish> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    VARNISHD,
    ['-F', '-a', `127.0.0.1:${port}`, '-b', origin, '-n', tempDir(), '-s', 'malloc,64m', '-j', 'none'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`varnishd exited ${child.exitCode}: ${stderr}`);
      return (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200;
    },
    30_000,
    'varnishd to accept requests',
  );
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
