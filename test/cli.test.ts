import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyEntry, TokenCipher } from '../src/crypto/tokenCipher.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { openDatabase } from '../src/store/database.js';
import { testConfig, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const run = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  try {
    // The built CLI, as users run it (vitest's global setup builds it first).
    const { stdout, stderr } = await run(process.execPath, ['dist/cli/main.js', ...args], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

for (const factory of DATABASES) {
  describe(`CLI on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      env = testEnv(database, simulatorEnv(simulator));
      expect((await cli(['migrate', 'up'], env)).code).toBe(0);
    });
    afterAll(async () => {
      await simulator?.close();
      await database?.drop();
    });

    function importFile(name: string, lines: unknown[]): string {
      const path = join(database.dataDir, name);
      writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
      return path;
    }

    function seededLine(
      provider: 'tiktok' | 'youtube' | 'instagram',
      externalAccountId: string,
      expiresAt: number,
    ) {
      const seeded = simulator.seedAccount(provider, { externalAccountId, accessExpiresAt: expiresAt });
      return {
        owner_id: 'owner-cli',
        provider,
        external_account_id: externalAccountId,
        display_name: seeded.displayName,
        access_token: seeded.accessToken,
        refresh_token: seeded.refreshToken,
        expires_at: new Date(expiresAt).toISOString(),
        scopes: seeded.scopes,
      };
    }

    async function listAccounts(): Promise<Array<Record<string, unknown>>> {
      const result = await cli(['accounts', 'list', '--json'], env);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout);
    }

    it('import reports every bad line by number and imports nothing', async () => {
      const good = seededLine('youtube', 'yt-good', Date.now() + 3_600_000);
      const file = importFile('bad.jsonl', [
        good,
        '{not json',
        { ...good, external_account_id: 'yt-2', provider: 'myspace' },
        { ...good, external_account_id: 'yt-3', access_token: '' },
        good,
      ]);
      const result = await cli(['accounts', 'import', file], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('bad.jsonl:2: not valid JSON');
      expect(result.stderr).toMatch(/bad\.jsonl:3: provider/);
      expect(result.stderr).toMatch(/bad\.jsonl:4: access_token/);
      expect(result.stderr).toMatch(/bad\.jsonl:5: duplicate of line 1/);
      expect(result.stderr).toContain('nothing was imported');
      expect(result.stderr).not.toContain(good.access_token);
      expect(await listAccounts()).toEqual([]);
    });

    it('bug: import stored "1" as 2001, -5 as 1969 and 1e300 (or failed on PostgreSQL without a line); each bad time is a numbered line, exit 2', async () => {
      const good = seededLine('youtube', 'yt-times', Date.now() + 3_600_000);
      const file = importFile('times.jsonl', [
        good,
        { ...good, external_account_id: 'yt-t2', expires_at: '1' },
        { ...good, external_account_id: 'yt-t3', expires_at: -5 },
        { ...good, external_account_id: 'yt-t4', expires_at: 1e300 },
      ]);
      const result = await cli(['accounts', 'import', file], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/times\.jsonl:2: expires_at: must be an ISO-8601 date/);
      expect(result.stderr).toMatch(
        /times\.jsonl:3: expires_at: must be a time between the years 2000 and 2100/,
      );
      expect(result.stderr).toMatch(
        /times\.jsonl:4: expires_at: must be a time between the years 2000 and 2100/,
      );
      expect(result.stderr).toContain('3 bad line(s); nothing was imported');
      expect(await listAccounts()).toEqual([]);
    });

    it('bug: a file saved with a UTF-8 byte order mark had line 1 "not valid JSON"', async () => {
      const good = seededLine('youtube', 'yt-bom', Date.now() + 3_600_000);
      const path = join(database.dataDir, 'bom.jsonl');
      // Line 2 is bad so that nothing is imported (later tests count the stored accounts).
      writeFileSync(
        path,
        `\uFEFF${JSON.stringify(good)}\n${JSON.stringify({ ...good, provider: 'myspace' })}\n`,
      );
      const result = await cli(['accounts', 'import', path], env);
      expect(result.code).toBe(2);
      expect(result.stderr).not.toMatch(/bom\.jsonl:1:/);
      expect(result.stderr).toMatch(/bom\.jsonl:2: provider/);
    });

    it('imports accounts and lists them without any token', async () => {
      const lines = [
        seededLine('tiktok', 'tt-expired', Date.now() - 60_000),
        seededLine('youtube', 'yt-valid', Date.now() + 3_600_000),
      ];
      const result = await cli(['accounts', 'import', importFile('good.jsonl', lines)], env);
      expect(result).toMatchObject({ code: 0 });
      expect(result.stdout).toContain('imported 2 account(s)');
      const listing = await cli(['accounts', 'list', '--json'], env);
      const accounts = JSON.parse(listing.stdout) as Array<{ externalAccountId: string; status: string }>;
      expect(accounts.map((a) => a.externalAccountId).sort()).toEqual(['tt-expired', 'yt-valid']);
      for (const line of lines) {
        expect(listing.stdout).not.toContain(line.access_token);
        expect(listing.stdout).not.toContain(line.refresh_token!);
      }
      const table = await cli(['accounts', 'list'], env);
      expect(table.stdout).toMatch(/tt-expired .* active /);
    });

    it('token prints a valid token, refreshing an expired one first', async () => {
      const id = (await listAccounts()).find((a) => a.externalAccountId === 'tt-expired')!.id as string;
      const result = await cli(['token', id], env);
      expect(result.code).toBe(0);
      const token = result.stdout.trim();
      expect(simulator.isAccessTokenValid('tiktok', token)).toBe(true);
      expect(simulator.refreshCalls('tiktok', 'tt-expired')).toBe(1);
      // Valid now: a second call prints the same token without another refresh.
      const again = await cli(['token', id, '--json'], env);
      expect(JSON.parse(again.stdout)).toMatchObject({ access_token: token, refreshed: false });
      expect(simulator.refreshCalls('tiktok', 'tt-expired')).toBe(1);
    });

    it('token exits 3 with the reason when the account needs re-authorization', async () => {
      const id = (await listAccounts()).find((a) => a.externalAccountId === 'yt-valid')!.id as string;
      simulator.revokeGrant('youtube', 'yt-valid');
      const refresh = await cli(['refresh', id], env);
      expect(refresh.code).toBe(3);
      expect(refresh.stderr).toMatch(/needs_reauth.*invalid_grant.*connect it again/);
      const token = await cli(['token', id], env);
      expect(token.code).toBe(3);
      expect(token.stdout).toBe('');
    });

    it('token for an unknown account exits 2 with a clear message', async () => {
      const result = await cli(['token', 'no-such-id'], env);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('No account with id no-such-id');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });

    it('keys rotate re-encrypts every token under the new first key; the old key can then go', async () => {
      const newEntry = generateKeyEntry('rotated');
      const rotated = await cli(['keys', 'rotate', '--batch-size', '1'], {
        ...env,
        TOKEN_ENCRYPTION_KEYS: `${newEntry},${env.TOKEN_ENCRYPTION_KEYS}`,
      });
      expect(rotated.code).toBe(0);
      expect(rotated.stdout).toMatch(
        /scanned 2 account\(s\); re-encrypted \d+ token\(s\) under key "rotated"/,
      );
      const store = openDatabase({
        databaseUrl: database.databaseUrl ?? null,
        sqlitePath: testConfig(database).sqlitePath,
      });
      try {
        const rows = await store.db
          .selectFrom('social_accounts')
          .select(['oauth_access_token', 'oauth_refresh_token'])
          .execute();
        for (const value of rows
          .flatMap((r) => [r.oauth_access_token, r.oauth_refresh_token])
          .filter((v) => v !== null)) {
          expect(TokenCipher.keyIdOf(value!)).toBe('rotated');
        }
      } finally {
        await store.close();
      }
      const status = await cli(['keys', 'status', '--json'], { ...env, TOKEN_ENCRYPTION_KEYS: newEntry });
      expect(Object.keys(JSON.parse(status.stdout))).toEqual(['rotated']);
      const id = (await listAccounts()).find((a) => a.externalAccountId === 'tt-expired')!.id as string;
      const onlyNewKey = await cli(['token', id], { ...env, TOKEN_ENCRYPTION_KEYS: newEntry });
      expect(onlyNewKey.code).toBe(0);
      const withoutKey = await cli(['token', id], {
        ...env,
        TOKEN_ENCRYPTION_KEYS: generateKeyEntry('unrelated'),
      });
      expect(withoutKey.code).toBe(78);
      expect(withoutKey.stderr).toMatch(/key "rotated" is not in the keyring/);
    });

    it('migrate down refuses to drop the tokens table without --yes, then goes down and up again', async () => {
      // Undo everything after the tokens migration (the ledger, and whatever came later).
      let refused = await cli(['migrate', 'down'], env);
      for (let i = 0; refused.code === 0 && i < 20; i++) refused = await cli(['migrate', 'down'], env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/DELETES EVERY STORED TOKEN.*--yes/);
      // Read the table directly: CLI commands other than `migrate` apply pending migrations.
      const store = openDatabase({
        databaseUrl: database.databaseUrl ?? null,
        sqlitePath: testConfig(database).sqlitePath,
      });
      try {
        const row = await store.db
          .selectFrom('social_accounts')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow();
        expect(Number(row.n)).toBe(2);
      } finally {
        await store.close();
      }
      if (factory.kind === 'postgres') {
        // A shared database is not migrated as a side effect of another command.
        const behind = await cli(['accounts', 'list'], env);
        expect(behind.code).toBe(78);
        expect(behind.stderr).toMatch(/schema is behind .*migrate up/);
      }
      const confirmed = await cli(['migrate', 'down', '--yes'], env);
      expect(confirmed.code).toBe(0);
      const status = await cli(['migrate', 'status', '--json'], env);
      expect(JSON.parse(status.stdout).every((m: { appliedAt: string | null }) => m.appliedAt === null)).toBe(
        true,
      );
      expect((await cli(['migrate', 'up'], env)).code).toBe(0);
      expect(await listAccounts()).toEqual([]);
    }, 120_000);
  });
}

describe('CLI configuration errors', () => {
  it('refuses to start in production without TOKEN_ENCRYPTION_KEYS, with a clear message', async () => {
    const result = await cli(['accounts', 'list'], {
      NODE_ENV: 'production',
      TOKEN_ENCRYPTION_KEYS: '',
      DATA_DIR: '/tmp/so-prod-test',
    });
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/TOKEN_ENCRYPTION_KEYS is not set/);
  });

  it('refuses a production worker whose platform base URL is plain http (issue 10: secrets in clear)', async () => {
    const result = await cli(['worker', '--once'], {
      NODE_ENV: 'production',
      TOKEN_ENCRYPTION_KEYS: generateKeyEntry('prod'),
      DATA_DIR: '/tmp/so-prod-http-test',
      TIKTOK_CLIENT_KEY: 'key',
      TIKTOK_CLIENT_SECRET: 'tt-client-secret-value',
      TIKTOK_BASE_URL: 'http://tiktok-proxy.example',
    });
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/TIKTOK_BASE_URL must be https in production/);
    expect(result.stderr).not.toContain('tt-client-secret-value');
  });

  it('rejects a malformed setting by name', async () => {
    const result = await cli(['accounts', 'list'], { PROVIDER_TIMEOUT_MS: 'soon' });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('PROVIDER_TIMEOUT_MS must be a whole number');
  });

  it('an unknown command exits 2', async () => {
    expect((await cli(['frobnicate'], {})).code).toBe(2);
  });
});
