import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv) {
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
  // Each command is a process of its own: seconds apiece on a loaded 2-core machine.
  describe(`publish and publications commands on ${factory.kind}`, { timeout: 120_000 }, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    let env: NodeJS.ProcessEnv;
    let video: string;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      env = testEnv(database, simulatorEnv(simulator));
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
      video = join(database.dataDir, 'clip.mp4');
      writeFileSync(video, randomBytes(2000));
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    it('refuses bad usage with exit code 2', async () => {
      const neither = await cli(['publish', 'acct'], env);
      expect(neither.code).toBe(2);
      expect(neither.stderr).toContain('exactly one of');
      expect((await cli(['publish', 'acct', video, '--mode', 'sideways'], env)).code).toBe(2);
      expect((await cli(['publish', 'no-such-account', video], env)).code).toBe(2);
      expect((await cli(['publications', 'list', '--status', 'nope'], env)).code).toBe(2);
    });

    it('an account that needs re-authorization exits 3, before anything is uploaded', async () => {
      const account = await insertSeededAccount(storeOf(app).accounts, simulator, 'youtube', {
        externalAccountId: 'cli-dead',
      });
      await storeOf(app).accounts.setStatus(account.id, 'needs_reauth', 'revoked by the user', Date.now());
      const result = await cli(['publish', account.id, video, '--title', 'Nope'], env);
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/re-authoriz|connect it again/);
    });

    it('a platform this process cannot publish to is a configuration error (78), with a clear message', async () => {
      // Its access token has expired: the command must refuse before refreshing it for nothing.
      const account = await insertSeededAccount(storeOf(app).accounts, simulator, 'tiktok', {
        externalAccountId: 'cli-tt',
        accessExpiresAt: Date.now() - 60_000,
      });
      // TikTok's credentials are not configured for this command: no client to publish with.
      const result = await cli(['publish', account.id, video], {
        ...env,
        TIKTOK_CLIENT_KEY: '',
        TIKTOK_CLIENT_SECRET: '',
      });
      expect(result.code).toBe(78);
      expect(result.stderr).toContain('Publishing to tiktok is not available');
      expect(result.stderr).toContain('TIKTOK_CLIENT_KEY');
      expect(result.stderr).not.toContain('refresh failed');
      expect(simulator.refreshCalls('tiktok', 'cli-tt')).toBe(0);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });

    it('publications list and show read publications back, never their secrets', async () => {
      const account = await insertSeededAccount(storeOf(app).accounts, simulator, 'youtube', {
        externalAccountId: 'cli-list',
      });
      const { publication } = await storeOf(app).publishing.repository.insert(
        {
          id: `pub_cli_${factory.kind}`,
          accountId: account.id,
          provider: 'youtube',
          request: {
            title: 'Listed',
            description: null,
            privacy: null,
            mode: null,
            options: {},
            contentType: 'video/mp4',
          },
          mediaPath: null,
          mediaOwned: false,
          sourceUrl: 'https://media.example/v.mp4?sig=SECRET-SIG',
          totalBytes: 2000,
          idempotencyKey: null,
        },
        Date.now(),
      );
      const listed = await cli(['publications', 'list', '--account', account.id, '--json'], env);
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        expect.objectContaining({ id: publication.id, status: 'queued' }),
      ]);
      const shown = await cli(['publications', 'show', publication.id], env);
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({
        id: publication.id,
        title: 'Listed',
        total_bytes: 2000,
      });
      expect(shown.stdout + listed.stdout).not.toContain('SECRET-SIG');
      expect((await cli(['publications', 'show', 'pub_missing'], env)).code).toBe(2);
    });
  });
}
