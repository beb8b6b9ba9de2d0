import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { PixqError, storeFault, toJobError } from '../../src/errors.js';

/** Which driver errors are outages (the real ones are produced by the other fault tests). */
describe('storeFault', () => {
  const coded = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

  it('maps connection failures and server shutdowns to 503 store_unavailable with a Retry-After', () => {
    for (const err of [
      coded('ECONNREFUSED'),
      coded('57P01', 'terminating connection due to administrator command'),
      coded('08006'),
      new Error('Connection terminated unexpectedly'),
    ]) {
      expect(storeFault(err)).toMatchObject({
        code: 'store_unavailable',
        status: 503,
        retryable: true,
        details: { retryAfterSeconds: expect.any(Number) },
      });
    }
  });

  it('maps a full disk to 507 storage_full', () => {
    const sqlite = new BetterSqlite3(':memory:');
    sqlite.pragma('max_page_count = 2');
    let full: unknown;
    try {
      sqlite.exec('create table t (x text)');
      for (let i = 0; i < 100; i++) sqlite.prepare('insert into t values (?)').run('x'.repeat(1000));
    } catch (err) {
      full = err;
    }
    expect((full as { code?: string }).code).toBe('SQLITE_FULL');
    for (const err of [full, coded('ENOSPC'), coded('53100')])
      expect(storeFault(err)).toMatchObject({ code: 'storage_full', status: 507 });
    expect(toJobError(full)).toMatchObject({ code: 'storage_full', retryable: true });
  });

  it("leaves other errors, and pixq's own, alone", () => {
    expect(storeFault(new Error('boom'))).toBeUndefined();
    expect(storeFault(coded('23505', 'duplicate key'))).toBeUndefined();
    expect(
      storeFault(new PixqError('url_fetch_failed', 'connection error to the source', { status: 422 })),
    ).toBeUndefined();
  });
});
