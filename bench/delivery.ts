/**
 * Delivery benchmark, side by side in one run on one machine:
 *
 * 1. First renders: a 1-megapixel JPEG asset to a 400-px-wide WebP, 50 distinct variants (qualities 51-100)
 *    requested one after another, through pixq's delivery URLs and through ipx (sharp-based, used by Nuxt Image;
 *    its Node server over the same file). ipx renders on every request, so every one of its requests is a
 *    first render. p50 and p99 of the latency each client saw.
 * 2. Cached hits: one variant, BENCH_CONNECTIONS (100) connections for BENCH_SECONDS (20) s with autocannon:
 *    pixq (the variant cached), ipx (the same URL, rendered each time) and Debian's nginx serving the very bytes
 *    pixq serves as a static file with sendfile (the floor for serving stored bytes).
 *
 * pixq runs as `pixq api` does, on SQLite and the file blob store, in a child process; ipx and nginx in their own.
 * Prints the machine, the tables and the checks against the targets (first render p50 at most ipx's; hits at
 * least 0.3x nginx's req/s with p99 at most 3x nginx's; no errors).
 *
 * Settings: BENCH_CONNECTIONS (100), BENCH_SECONDS (20), BENCH_CPU_PROF=dir for a V8 CPU profile of pixq.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { deliveryUrl } from '@pixq/client/delivery';
import { describeMachine } from './machine.js';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
  max: number;
  total: number;
}
interface AutocannonResult {
  requests: Histogram;
  latency: Histogram;
  throughput: Histogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  opts: Record<string, unknown>,
) => Promise<AutocannonResult>;

const ADMIN_KEY = 'bench-admin-key-0123456789';
const self = fileURLToPath(import.meta.url);
const env = process.env;
const FIRST_RENDERS = 50;

if (process.argv.includes('--pixq')) await servePixq();
else if (process.argv.includes('--ipx')) await serveIpx(process.argv[process.argv.indexOf('--ipx') + 1]);
else await main();

/** Child: pixq's API alone on loopback; prints its port. */
async function servePixq() {
  const { loadConfig } = await import('../src/config.js');
  const { openServices } = await import('../src/services.js');
  const { buildServer } = await import('../src/api/index.js');
  const services = await openServices(loadConfig());
  const app = await buildServer(services);
  await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }));
  process.on(
    'SIGTERM',
    () =>
      void app
        .close()
        .then(() => services.close())
        .then(() => process.exit(0)),
  );
}

/** Child: ipx's Node server over `dir`; prints its port. */
async function serveIpx(dir: string) {
  const { createIPX, createIPXNodeServer, ipxFSStorage } = await import('ipx');
  const server = http.createServer(createIPXNodeServer(createIPX({ storage: ipxFSStorage({ dir }) })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

async function main() {
  const connections = Number(env.BENCH_CONNECTIONS ?? 100);
  const seconds = Number(env.BENCH_SECONDS ?? 20);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pixq-bench-delivery-'));
  const photo = await onePixelMegaJpeg();
  fs.mkdirSync(path.join(work, 'ipx'));
  fs.writeFileSync(path.join(work, 'ipx', 'photo.jpg'), photo);
  const meta = await sharp(photo).metadata();
  console.log(`# bench:delivery, ${new Date().toISOString()}`);
  console.log(
    `Machine: ${describeMachine()}, Node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`,
  );
  console.log(`Source: a ${meta.width}x${meta.height} JPEG (${photo.length} bytes), variants 400 px wide WebP.\n`);

  const children: ChildProcess[] = [];
  try {
    const profile = env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF}`] : [];
    const pixq = await startChild([...profile, '--import', 'tsx', self, '--pixq'], children, {
      PIXQ_DATA_DIR: path.join(work, 'pixq'),
      DATABASE_URL: '',
      PIXQ_ADMIN_KEY: ADMIN_KEY,
      PIXQ_LOG_LEVEL: 'warn',
      PIXQ_DASHBOARD: '0',
      PIXQ_RATE_RENDER: '100000/1m',
    });
    const ipx = await startChild(['--import', 'tsx', self, '--ipx', path.join(work, 'ipx')], children, {});
    const { endpoint, key, salt, version } = await pixqAsset(pixq, photo);
    const pixqUrl = (quality: number) =>
      deliveryUrl('photo', { width: 400, quality, format: 'webp', cachebuster: version }, { endpoint, key, salt });
    const ipxUrl = (quality: number) => `${ipx}/w_400,f_webp,q_${quality}/photo.jpg`;

    // Warm-up of both (JIT, first sharp pipeline), with a quality the measured runs do not use.
    for (const url of [pixqUrl(50), ipxUrl(50)]) await fetchOk(url);
    const qualities = Array.from({ length: FIRST_RENDERS }, (_, i) => 51 + i);
    const pixqFirst: number[] = [];
    const ipxFirst: number[] = [];
    for (const q of qualities) {
      pixqFirst.push(await timed(pixqUrl(q)));
      ipxFirst.push(await timed(ipxUrl(q)));
    }
    console.log(`### First render: ${FIRST_RENDERS} distinct variants, one request at a time\n`);
    console.log('| server | p50 ms | p99 ms | mean ms |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const [name, times] of [
      ['pixq (render, store the blob and the cache row, answer)', pixqFirst],
      ['ipx (render, answer)', ipxFirst],
    ] as const) {
      console.log(`| ${name} | ${pct(times, 50)} | ${pct(times, 99)} | ${round(mean(times))} |`);
    }

    const cached = pixqUrl(80);
    const variant = Buffer.from(await (await fetchOk(cached)).arrayBuffer());
    const nginx = await startNginx(work, variant, children);
    const runs = [
      ['pixq (cached variant)', cached],
      ['ipx (renders each request)', ipxUrl(80)],
      ['nginx (the same bytes, static file)', `${nginx}/variant.webp`],
    ] as const;
    const results: [string, AutocannonResult][] = [];
    for (const [name, url] of runs) {
      await autocannon({ url, connections: 10, duration: 2 });
      console.error(`hits: ${name}, ${connections} connections, ${seconds} s ...`);
      results.push([name, await autocannon({ url, connections, duration: seconds })]);
    }
    console.log(`\n### Cached hits: one variant (${variant.length} bytes), ${connections} connections, ${seconds} s\n`);
    console.log('| server | req/s | p50 ms | p99 ms | MB/s | errors |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, r] of results) {
      const errors = r.errors + r.timeouts + r.non2xx + r.resets;
      console.log(
        `| ${name} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p99} | ${round(r.throughput.average / 1e6)} | ${errors} |`,
      );
    }
    const [pixqHits, , nginxHits] = results.map(([, r]) => r);
    const errors = results.reduce((sum, [, r]) => sum + r.errors + r.timeouts + r.non2xx + r.resets, 0);
    const checks = [
      [
        pct(pixqFirst, 50) <= pct(ipxFirst, 50),
        `first render p50 at most ipx's (${pct(pixqFirst, 50)} vs ${pct(ipxFirst, 50)} ms)`,
      ],
      [
        pixqHits.requests.average >= 0.3 * nginxHits.requests.average,
        `cached hits at least 0.3x nginx's req/s (${round(pixqHits.requests.average / nginxHits.requests.average)}x)`,
      ],
      [
        pixqHits.latency.p99 <= 3 * Math.max(1, nginxHits.latency.p99),
        `cached hits p99 at most 3x nginx's (${pixqHits.latency.p99} vs ${nginxHits.latency.p99} ms)`,
      ],
      [errors === 0, `no errors (${errors})`],
    ] as const;
    console.log('');
    for (const [ok, text] of checks) console.log(`- ${ok ? 'PASS' : 'FAIL'}: ${text}`);
    process.exitCode = checks.every(([ok]) => ok) ? 0 : 1;
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A vendor, its 1-MP asset and its delivery credentials, set up through pixq's API as a user would. */
async function pixqAsset(base: string, photo: Buffer) {
  const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
  const created = await fetch(`${base}/v1/vendors`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: 'bench' }),
  });
  const { apiKey } = (await created.json()) as { apiKey: string };
  const form = new FormData();
  form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
  const put = await fetch(`${base}/v1/assets/photo`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${apiKey}` },
    body: form,
  });
  if (put.status !== 200) throw new Error(`PUT /v1/assets/photo: ${put.status} ${await put.text()}`);
  const { version } = (await put.json()) as { version: string };
  const delivery = await fetch(`${base}/v1/delivery`, { headers: { authorization: `Bearer ${apiKey}` } });
  return { ...((await delivery.json()) as { endpoint: string; key: string; salt: string }), version };
}

/** About one megapixel of real photos: the human package's sample sheet, resized. */
async function onePixelMegaJpeg(): Promise<Buffer> {
  const sheet = fileURLToPath(new URL('../node_modules/@vladmandic/human/assets/samples.jpg', import.meta.url));
  return sharp(sheet).resize(1200, 850, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer();
}

async function startNginx(work: string, bytes: Buffer, children: ChildProcess[]): Promise<string> {
  const dir = path.join(work, 'nginx');
  fs.mkdirSync(path.join(dir, 'www'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'));
  fs.writeFileSync(path.join(dir, 'www', 'variant.webp'), bytes);
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/tmp;`).join(' ');
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { image/webp webp; }
  ${temp}
  server { listen 127.0.0.1:${port}; root ${dir}/www; }
}
`,
  );
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const res = await fetch(`${base}/variant.webp`).catch(() => undefined);
    if (res?.status === 200) return base;
    if (i > 100 || child.exitCode !== null) throw new Error('nginx did not start (Debian package nginx-light)');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startChild(args: string[], children: ChildProcess[], extraEnv: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${args.at(-1)} exited with ${code} before listening`)));
  });
  return `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
}

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return res;
}

async function timed(url: string): Promise<number> {
  const start = performance.now();
  await (await fetchOk(url)).arrayBuffer();
  return performance.now() - start;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
