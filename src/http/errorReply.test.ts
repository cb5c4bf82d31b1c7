import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { toErrorBody } from './errorReply.js';

/** Real errors from real drivers, not hand-made look-alikes. */
describe('an unavailable database is a 503 with Retry-After, never a 500', () => {
  it('PostgreSQL that refuses connections', async () => {
    const client = new pg.Client({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      connectionTimeoutMillis: 2000,
    });
    const error = await client.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(toErrorBody(error)).toMatchObject({ code: 'unavailable', headers: { 'retry-after': '5' } });
  });

  it('SQLite on a full disk (SQLITE_FULL)', () => {
    const db = new BetterSqlite3(':memory:');
    db.exec('create table t (x text)');
    db.pragma('max_page_count = 2');
    let error: unknown = null;
    try {
      for (let i = 0; i < 1000; i++) db.prepare('insert into t values (?)').run('x'.repeat(1000));
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe('SQLITE_FULL');
    expect(toErrorBody(error).code).toBe('unavailable');
  });

  it('a query that is simply wrong stays an internal error', () => {
    const db = new BetterSqlite3(':memory:');
    let error: unknown = null;
    try {
      db.prepare('select * from missing_table').all();
    } catch (e) {
      error = e;
    }
    expect(toErrorBody(error).code).toBe('internal_error');
  });
});
