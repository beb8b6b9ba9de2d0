import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { migrateStore, openServices, startWorker, type Services } from '../services.js';
import { MODELS_USAGE, modelsCommand } from './models.js';
import { SUBMIT_USAGE, submitCommand } from './submit.js';

const USAGE = `usage: pixq <command>

  start                 run the API and workers in one process (the default for one machine)
  api                   run the API only
  worker                run workers only
  migrate               apply database migrations and exit
  vendor create NAME [--weight N] [--max-concurrency N] [--max-queued N]
                        create a vendor; prints its API key as the last line
  vendor key VENDOR     issue another API key for a vendor (by name or id)
  vendor list           list vendors
  ${SUBMIT_USAGE}
  ${MODELS_USAGE}

Configuration comes from environment variables; see the README.`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return serve({ api: true, worker: true });
    case 'api':
      return serve({ api: true, worker: false });
    case 'worker':
      return serve({ api: false, worker: true });
    case 'migrate':
      return migrateCommand();
    case 'vendor':
      return vendorCommand(rest);
    case 'submit':
      return submitCommand(rest);
    case 'models':
      return modelsCommand(rest);
    default:
      console.log(USAGE);
      if (command && !['help', '--help', '-h'].includes(command)) process.exitCode = 2;
  }
}

async function migrateCommand() {
  const applied = await migrateStore(loadConfig());
  console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
}

async function withServices(fn: (services: Services) => Promise<void>) {
  const services = await openServices(loadConfig());
  try {
    await fn(services);
  } finally {
    await services.close();
  }
}

async function vendorCommand(args: string[]) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { weight: { type: 'string' }, 'max-concurrency': { type: 'string' }, 'max-queued': { type: 'string' } },
  });
  const [action, name] = positionals;
  await withServices(async ({ engine }) => {
    if (action === 'create' && name) {
      const vendor = await engine.vendors.create(name, {
        weight: optionalNumber('--weight', values.weight),
        maxRunning: optionalNumber('--max-concurrency', values['max-concurrency']),
        maxQueued: optionalNumber('--max-queued', values['max-queued']),
      });
      const { key } = await engine.apiKeys.issue(vendor.id);
      console.log(`created vendor ${vendor.name} (${vendor.id}), weight ${vendor.weight}`);
      console.log('API key (shown once, store it now):');
      console.log(key);
    } else if (action === 'key' && name) {
      const vendor = await engine.vendors.get(name);
      const { key } = await engine.apiKeys.issue(vendor.id);
      console.log(`new API key for ${vendor.name} (shown once, store it now):`);
      console.log(key);
    } else if (action === 'list') {
      for (const v of await engine.vendors.list()) {
        console.log(
          `${v.id}  ${v.name}  weight=${v.weight} maxRunning=${v.maxRunning ?? '-'} maxQueued=${v.maxQueued ?? '-'} ${v.status}`,
        );
      }
    } else {
      console.log(USAGE);
      process.exitCode = 2;
    }
  });
}

function optionalNumber(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`${flag} must be a number, got "${raw}"`);
  return value;
}

/** Runs until SIGTERM or SIGINT, then stops claiming, drains within the grace period and exits 0. */
async function serve(parts: { api: boolean; worker: boolean }) {
  const config = loadConfig();
  const services = await openServices(config);
  const { log } = services;
  const stops: (() => Promise<void>)[] = [];
  if (parts.worker) stops.push(await startWorker(services));
  if (parts.api) {
    const { startApi } = await import('../api/index.js');
    stops.push(await startApi(services));
  }
  log.info({ store: services.engine.store.location, ...parts }, 'pixq running');
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Together, worker first: it stops claiming at once (then drains within the grace period) while the API
    // ends its event streams and stops accepting.
    await Promise.all(stops.map((stop) => stop()));
    await services.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
