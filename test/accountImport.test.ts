import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importAccounts } from '../src/service/accountImport.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { openTestApp, testConfig, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';

/** Issue 10, item 6: `accounts import` on bad timestamps, a BOM, and two imports of one file at once. */
const line = (externalAccountId: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    owner_id: 'importer',
    provider: 'tiktok',
    external_account_id: externalAccountId,
    access_token: `act.${externalAccountId}.0123456789`,
    refresh_token: `rft.${externalAccountId}.0123456789`,
    expires_at: '2030-01-01T00:00:00Z',
    ...extra,
  });

/** `accounts import` in a child process of its own (test/support/importWorker.ts). */
function startImporter(env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/importWorker.ts'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let readyNow: () => void = () => {};
  let failNow: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    readyNow = resolve;
    failNow = reject;
  });
  child.stdout!.on('data', (chunk) => {
    stdout += chunk;
    if (stdout.includes('ready\n')) readyNow();
  });
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const report = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('exit', (code) => {
      failNow(new Error(`importer exited ${code} before it was ready: ${stderr}`));
      if (code !== 0) reject(new Error(`importer exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!));
    });
  });
  return { ready, go: () => child.stdin!.end('go\n'), report };
}

/**
 * Holds the database's write lock from another connection (readers go on): SQLite BEGIN IMMEDIATE;
 * on PostgreSQL a lock on social_accounts that lets reads through and makes inserts wait.
 */
async function holdWriteLock(database: TestDatabase): Promise<() => Promise<void>> {
  if (database.kind === 'sqlite') {
    const connection = new BetterSqlite3(testConfig(database).sqlitePath);
    connection.exec('BEGIN IMMEDIATE');
    return async () => {
      connection.exec('ROLLBACK');
      connection.close();
    };
  }
  const client = new pg.Client({ connectionString: database.databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE social_accounts IN SHARE ROW EXCLUSIVE MODE');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}

for (const factory of DATABASES) {
  describe(`account import (${factory.kind})`, () => {
    let database: TestDatabase;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      app = await openTestApp(database);
    });
    afterAll(async () => {
      await app?.close();
      await database?.drop();
    });

    async function stored(externalAccountId: string) {
      return storeOf(app).accounts.findByExternalId('tiktok', externalAccountId);
    }

    it('bug: "1" became 2001-01-01, -5 became 1969 and 1e300 was stored or failed the whole import: each is refused by its line', async () => {
      const text = [
        line('ts-good'),
        line('ts-string-one', { expires_at: '1' }),
        line('ts-negative', { expires_at: -5 }),
        line('ts-huge', { refresh_token_expires_at: 1e300 }),
        line('ts-feb-31', { expires_at: '2026-02-31' }),
        line('ts-no-zone', { expires_at: '2026-03-01T12:00:00' }),
        line('ts-future-issue', { token_issued_at: Date.now() + 7 * 86_400_000 }),
      ].join('\n');
      const outcome = await importAccounts(storeOf(app).accounts, text, app.clock);
      expect(outcome.imported).toBe(0);
      expect(outcome.errors.map((error) => error.line)).toEqual([2, 3, 4, 5, 6, 7]);
      expect(outcome.errors[0]!.message).toMatch(/expires_at: must be an ISO-8601 date/);
      expect(outcome.errors[1]!.message).toMatch(
        /expires_at: must be a time between the years 2000 and 2100/,
      );
      expect(outcome.errors[2]!.message).toMatch(/refresh_token_expires_at: must be a time between/);
      expect(outcome.errors[5]!.message).toMatch(/token_issued_at: must not be in the future/);
      expect(await stored('ts-good')).toBeNull();
    });

    it('reads epoch seconds, epoch milliseconds and ISO-8601 with an offset as the same instant', async () => {
      const instant = Date.UTC(2031, 4, 6, 7, 8, 9);
      const text = [
        line('ts-seconds', { expires_at: instant / 1000 }),
        line('ts-millis', { expires_at: instant }),
        line('ts-offset', { expires_at: '2031-05-06T09:08:09+02:00' }),
      ].join('\n');
      expect(await importAccounts(storeOf(app).accounts, text, app.clock)).toEqual({
        imported: 3,
        errors: [],
      });
      for (const id of ['ts-seconds', 'ts-millis', 'ts-offset'])
        expect((await stored(id))?.expiresAt).toBe(instant);
    });

    it('bug: a UTF-8 byte order mark made line 1 "not valid JSON"', async () => {
      const outcome = await importAccounts(
        storeOf(app).accounts,
        `\uFEFF${line('bom-first')}\n${line('bom-second')}`,
        app.clock,
      );
      expect(outcome).toEqual({ imported: 2, errors: [] });
      expect(await stored('bom-first')).not.toBeNull();
    });

    it('bug: two imports of one file at once ended in a raw unique-constraint error; now one imports, the other names the lines', async () => {
      const file = join(database.dataDir, 'race.jsonl');
      writeFileSync(file, Array.from({ length: 20 }, (_, index) => line(`race-${index}`)).join('\n'));
      const env = testEnv(database, { IMPORT_FILE: file });
      const first = startImporter(env);
      const second = startImporter(env);
      await Promise.all([first.ready, second.ready]);
      // Both check the file against the table, then queue for the write behind a lock held here:
      // released, they write one after the other, the second into the rows the first committed.
      const release = await holdWriteLock(database);
      try {
        first.go();
        second.go();
        await new Promise((resolve) => setTimeout(resolve, 1500));
      } finally {
        await release();
      }
      const reports = await Promise.all([first.report, second.report]);
      // Neither throws: the loser is told which lines another import stored.
      expect(reports.filter((report) => 'thrown' in report)).toEqual([]);
      const outcomes = reports as unknown as Array<{
        imported: number;
        errors: Array<{ line: number; message: string }>;
      }>;
      expect(outcomes.map((outcome) => outcome.imported).sort((a, b) => a - b)).toEqual([0, 20]);
      const loser = outcomes.find((outcome) => outcome.imported === 0)!;
      expect(loser.errors.map((error) => error.line)).toEqual(
        Array.from({ length: 20 }, (_, index) => index + 1),
      );
      expect(loser.errors[0]!.message).toMatch(
        /tiktok\/race-0 was connected by another import or connect while this one ran/,
      );
      const owned = await storeOf(app).accounts.list({ ownerId: 'importer', limit: 500 });
      expect(owned.filter((account) => account.externalAccountId.startsWith('race-'))).toHaveLength(20);
    }, 60_000);
  });
}
