import pg from 'pg';
import { defer } from './cleanup.js';

/** Runs `fn` on a short-lived connection to `url`. */
async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database next to the one `adminUrl` names and registers its drop, so every system
 * starts from the same empty state and nothing is left on the server afterwards.
 */
export async function freshDatabase(adminUrl: string, label: string): Promise<string> {
  const name = `bench_${label}_${process.pid}_${Date.now()}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  await withClient(adminUrl, (c) => c.query(`create database ${name}`));
  defer(`drop database ${name}`, () =>
    withClient(adminUrl, (c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  );
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function postgresVersion(url: string): Promise<string> {
  const { rows } = await withClient(url, (c) =>
    c.query<{ v: string }>("select current_setting('server_version') as v"),
  );
  return `PostgreSQL ${rows[0].v}`;
}
