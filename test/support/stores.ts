import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';

/**
 * Runs a suite once per store: SQLite in a fresh temp directory, and PostgreSQL in a fresh database on the
 * server named by PIXQ_TEST_DATABASE_URL (skipped, with the reason printed, when that is unset).
 */
export interface StoreTarget {
  name: 'sqlite' | 'postgres';
  /** A new, empty location for one test: a temp dir for SQLite, a new database for PostgreSQL. */
  fresh(): Promise<{ dataDir: string; databaseUrl?: string }>;
}

const pgUrl = process.env.PIXQ_TEST_DATABASE_URL;
let warned = false;

export const sqliteTarget: StoreTarget = {
  name: 'sqlite',
  async fresh() {
    return { dataDir: tempDir() };
  },
};

export const postgresTarget: StoreTarget = {
  name: 'postgres',
  async fresh() {
    const name = `pixq_test_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(pgUrl!);
    url.pathname = `/${name}`;
    return { dataDir: tempDir(), databaseUrl: url.toString() };
  },
};

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pixq-test-'));
}

export function describeEachStore(title: string, body: (target: StoreTarget) => void) {
  describe(`${title} [sqlite]`, () => body(sqliteTarget));
  if (pgUrl) {
    describe(`${title} [postgres]`, () => body(postgresTarget));
  } else {
    if (!warned) {
      console.warn('PIXQ_TEST_DATABASE_URL is not set: skipping the PostgreSQL runs of the store tests');
      warned = true;
    }
    describe.skip(`${title} [postgres] (PIXQ_TEST_DATABASE_URL unset)`, () => body(postgresTarget));
  }
}

/** Drops the test databases this process created (best effort, for a tidy server). */
export async function dropDatabase(databaseUrl: string | undefined) {
  if (!databaseUrl || !pgUrl) return;
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = new pg.Client({ connectionString: pgUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
