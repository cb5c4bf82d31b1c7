import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../../src/domain/providerName.js';
import { buildApp } from '../../src/http/app.js';
import { signMetaRequest } from '../../src/http/webhookSignatures.js';
import { REDACTED_PATHS } from '../../src/service/logging.js';
import { storeOf } from '../../src/service/storeAccess.js';
import {
  type ApiResponse,
  browse,
  connectThroughBrowser,
  RETURN_ORIGIN,
  reservePort,
  startWebhookReceiver,
  type TestService,
} from '../http/harness.js';
import { openTestApp, testEnv } from '../support/app.js';
import { ADMIN_URL, DATABASES, type TestDatabase } from '../support/databases.js';
import { TEST_KEYS } from '../support/keys.js';
import { SIM_CLIENTS, simulatorEnv, startTestSimulator } from '../support/simulator.js';

const run = promisify(execFile);

/**
 * Issue 5, item 5: store known secrets (tokens from a connect, from an import, and the rotated ones
 * a refresh brings; client secrets; API keys; the webhook secret; the encryption key), then search
 * everything the service leaves behind or says: the SQLite file and its WAL, a pg_dump, every log
 * line (pino at trace), every HTTP answer (body and headers), every outgoing notification, every
 * error message and every CLI output. None may hold any of them.
 *
 * The one designed exception: `POST /v1/accounts/:id/token` and `social-oauth token` hand out the
 * account's current access token. Their answers are checked to hold that token and nothing else.
 */

interface Recorded {
  where: string;
  text: string;
}

class SecretRegistry {
  private readonly secrets = new Map<string, string>();

  add(label: string, value: string | null | undefined): void {
    if (!value) return;
    if (value.length < 8) throw new Error(`secret ${label} is too short to search for`);
    this.secrets.set(value, label);
  }

  get size(): number {
    return this.secrets.size;
  }

  /** Labels (never values: a failing test must not print them) of the secrets found in `text`. */
  foundIn(text: string, except: ReadonlySet<string> = new Set()): string[] {
    const found: string[] = [];
    for (const [value, label] of this.secrets) {
      if (!except.has(value) && text.includes(value)) found.push(label);
    }
    return found;
  }
}

for (const factory of DATABASES) {
  describe(`secrets stay secret (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
    let env: NodeJS.ProcessEnv;
    let fileDir: string;
    const secrets = new SecretRegistry();
    const logLines: string[] = [];
    const answers: Recorded[] = [];
    const tokenAnswers: Array<{ accountId: string; text: string }> = [];
    const cliOutputs: Recorded[] = [];
    const realFetch = globalThis.fetch;
    const accountIds: Record<string, string> = {};

    /** Every answer from the service, whoever asked (the harness, browse, a test), is kept. */
    function recordAnswers(baseUrl: string): void {
      globalThis.fetch = async (input, init) => {
        const response = await realFetch(input, init);
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
        if (url.startsWith(baseUrl)) {
          const text = await response.clone().text();
          const headers = [...response.headers].map(([name, value]) => `${name}: ${value}`).join('\n');
          const path = new URL(url).pathname;
          if (/^\/v1\/accounts\/[^/]+\/token$/.test(path) && response.status === 200) {
            tokenAnswers.push({ accountId: path.split('/')[3]!, text });
            answers.push({ where: `headers of ${init?.method ?? 'GET'} ${path}`, text: headers });
          } else {
            answers.push({
              where: `${init?.method ?? 'GET'} ${path} → ${response.status}`,
              text: `${headers}\n\n${text}`,
            });
          }
        }
        return response;
      };
    }

    async function cli(
      label: string,
      args: string[],
    ): Promise<{ code: number; stdout: string; stderr: string }> {
      let result: { code: number; stdout: string; stderr: string };
      try {
        const { stdout, stderr } = await run(process.execPath, ['dist/cli/main.js', ...args], {
          env: { ...process.env, ...env, LOG_LEVEL: 'trace' },
        });
        result = { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        result = { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
      cliOutputs.push({ where: `cli ${label} (stderr)`, text: result.stderr });
      if (label !== 'token') cliOutputs.push({ where: `cli ${label} (stdout)`, text: result.stdout });
      return result;
    }

    beforeAll(async () => {
      database = await factory.create();
      fileDir = mkdtempSync(join(tmpdir(), 'social-oauth-secrets-'));
      const simulator = await startTestSimulator();
      receiver = await startWebhookReceiver();
      const port = await reservePort();
      const baseUrl = `http://127.0.0.1:${port}`;
      const webhookSecret = 'whsec-known-secret-for-the-search-0001';
      const extra = {
        ...simulatorEnv(simulator, baseUrl),
        PUBLIC_BASE_URL: baseUrl,
        ALLOWED_RETURN_ORIGINS: RETURN_ORIGIN,
        WEBHOOK_URL: receiver.url,
        WEBHOOK_SECRET: webhookSecret,
      };
      env = testEnv(database, extra);
      // Every level, through the service's own redaction settings, into memory.
      const logger = pino(
        { level: 'trace', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } },
        { write: (line: string) => logLines.push(line) },
      );
      recordAnswers(baseUrl);
      const oauth = await openTestApp(database, { env: extra, logger });
      const app = await buildApp({
        app: oauth,
        logger: logger as unknown as FastifyBaseLogger,
        notifierBackoff: { baseMs: 20, maxMs: 100 },
      });
      await app.listen({ host: '127.0.0.1', port });
      const { key } = await app.socialOAuth.apiKeys.create('secrets test');
      const api = async (method: string, path: string, body?: unknown): Promise<ApiResponse> => {
        const response = await fetch(`${baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${key}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        return {
          status: response.status,
          headers: response.headers,
          body: text ? JSON.parse(text) : null,
          text,
        };
      };
      service = {
        app,
        oauth,
        simulator,
        baseUrl,
        apiKey: key,
        api,
        async close() {
          await app.close();
          await oauth.close();
          await simulator.close();
        },
      };

      secrets.add('API key', key);
      // The secret part may itself contain '_' (base64url): take all after the id.
      secrets.add('API key secret part', /^sok_[0-9a-f]{12}_(.+)$/.exec(key)?.[1]);
      secrets.add('encryption key', TEST_KEYS.split(':')[1]);
      secrets.add(
        'encryption key (base64url)',
        Buffer.from(TEST_KEYS.split(':')[1]!, 'base64').toString('base64url'),
      );
      secrets.add('webhook secret', webhookSecret);
      for (const provider of ['instagram', 'tiktok', 'youtube'] as const) {
        secrets.add(`${provider} client secret`, SIM_CLIENTS[provider].clientSecret);
      }
    });

    afterAll(async () => {
      globalThis.fetch = realFetch;
      await service?.close();
      await receiver?.close();
      rmSync(fileDir, { recursive: true, force: true });
      await database?.drop();
    });

    const rememberTokens = async (label: string, accountId: string) => {
      const account = await storeOf(service.oauth).accounts.findById(accountId);
      secrets.add(`${label} access token`, account?.accessToken);
      secrets.add(`${label} refresh token`, account?.refreshToken);
    };

    it('stores known secrets: connects, an import, refreshes (rotations), and failures', async () => {
      // Connect through the simulator; the authorization codes are secrets too.
      for (const provider of ['tiktok', 'instagram', 'youtube'] as ProviderName[]) {
        const externalAccountId = provider === 'instagram' ? '17841400000004242' : `secret-${provider}`;
        const landed = await connectThroughBrowser(service, {
          provider,
          ownerId: 'secret-owner',
          consent: { externalAccountId },
        });
        const id = landed.exit!.searchParams.get('account_id')!;
        accountIds[provider] = id;
        await rememberTokens(`connected ${provider}`, id);
        for (const visited of landed.visited) {
          secrets.add(`${provider} authorization code`, new URL(visited).searchParams.get('code'));
        }
      }

      // Import two accounts with tokens the simulator knows, through the CLI.
      const imported = (['tiktok', 'youtube'] as const).map((provider) =>
        service.simulator.seedAccount(provider, { externalAccountId: `imported-${provider}` }),
      );
      const lines = imported.map((seeded) =>
        JSON.stringify({
          owner_id: 'secret-owner',
          provider: seeded.provider,
          external_account_id: seeded.externalAccountId,
          access_token: seeded.accessToken,
          refresh_token: seeded.refreshToken,
          expires_at: seeded.accessExpiresAt,
          scopes: seeded.scopes,
        }),
      );
      for (const seeded of imported) {
        secrets.add(`imported ${seeded.provider} access token`, seeded.accessToken);
        secrets.add(`imported ${seeded.provider} refresh token`, seeded.refreshToken);
      }
      // A bad file first: its errors must name lines and fields, never the tokens on them.
      const badFile = join(fileDir, 'bad.jsonl');
      writeFileSync(
        badFile,
        `${lines[0]!.replace('"tiktok"', '"myspace"')}\n${lines[1]}\n{not json ${imported[0]!.accessToken}\n`,
      );
      expect((await cli('import (bad)', ['accounts', 'import', badFile])).code).toBe(2);
      const goodFile = join(fileDir, 'good.jsonl');
      writeFileSync(goodFile, `${lines.join('\n')}\n`);
      const importRun = await cli('import', ['accounts', 'import', goodFile]);
      expect(importRun.code, importRun.stderr).toBe(0);
      // Positive control: the search does find a token where one is.
      expect(secrets.foundIn(readFileSync(goodFile, 'utf8'))).toContain('imported tiktok access token');
      rmSync(goodFile);
      rmSync(badFile);
      for (const seeded of imported) {
        const account = await storeOf(service.oauth).accounts.findByExternalId(
          seeded.provider,
          seeded.externalAccountId,
        );
        accountIds[`imported-${seeded.provider}`] = account!.id;
      }

      // Refresh everything: TikTok rotates its refresh token, the others get new access tokens;
      // Instagram refuses a token younger than 24 hours (an error answer to search too).
      for (const [label, id] of Object.entries(accountIds)) {
        await service.api('POST', `/v1/accounts/${id}/refresh`);
        await rememberTokens(`refreshed ${label}`, id);
      }
      // Rotate once more through the CLI.
      const cliRefresh = await cli('refresh', ['refresh', accountIds.tiktok!]);
      expect(cliRefresh.code, cliRefresh.stderr).toBe(0);
      await rememberTokens('cli-refreshed tiktok', accountIds.tiktok!);

      // Failures: a dead grant (409, a needs_reauth notification), a forged webhook, unknown ids.
      service.simulator.revokeGrant('youtube', 'imported-youtube');
      const dead = await service.api('POST', `/v1/accounts/${accountIds['imported-youtube']}/refresh`);
      expect(dead.status).toBe(409);
      expect((await service.api('POST', `/v1/accounts/${accountIds['imported-youtube']}/token`)).status).toBe(
        409,
      );
      const forged = signMetaRequest({ algorithm: 'HMAC-SHA256', user_id: '17841400000004242' }, 'wrong');
      await fetch(`${service.baseUrl}/webhooks/instagram/deauthorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ signed_request: forged }).toString(),
      });
      await service.api('GET', '/v1/accounts/nope');
      await service.api('POST', '/v1/connect-sessions', {
        provider: 'tiktok',
        owner_id: 'x',
        return_to: 'https://evil.example',
      });

      // The designed place, over HTTP and the CLI.
      const token = await service.api('POST', `/v1/accounts/${accountIds.tiktok}/token`);
      expect(token.status).toBe(200);
      const cliToken = await cli('token', ['token', accountIds.tiktok!]);
      expect(cliToken.code, cliToken.stderr).toBe(0);
      tokenAnswers.push({ accountId: accountIds.tiktok!, text: cliToken.stdout });

      // Reading around: lists, the ledger, the status page, the CLI's listings.
      await service.api('GET', '/v1/accounts?owner_id=secret-owner');
      await service.api('GET', '/v1/events?limit=500');
      for (const id of Object.values(accountIds)) await service.api('GET', `/v1/accounts/${id}`);
      const portal = await service.api('POST', '/v1/portal-sessions', { owner_id: 'secret-owner' });
      await browse(service, portal.body.url);
      await Promise.all([
        cli('accounts list', ['accounts', 'list', '--json']),
        cli('api-keys list', ['api-keys', 'list', '--json']),
        cli('migrate status', ['migrate', 'status']),
        cli('unknown account', ['token', 'no-such-account']),
      ]);

      // A revoke at the end: the ledger and logs of a revocation are searched too.
      await service.api('POST', `/v1/accounts/${accountIds.youtube}/revoke`);
      await new Promise((resolve) => setTimeout(resolve, 300));

      // 3 connects, 2 imports, their rotations, 3 codes, 3 client secrets, keys and webhook secret.
      expect(secrets.size).toBeGreaterThanOrEqual(20);
      // Eight CLI processes in a row: on a loaded 2-core CI machine each takes seconds.
    }, 120_000);

    it('the designed place hands out the access token, and nothing else secret', async () => {
      expect(tokenAnswers.length).toBeGreaterThanOrEqual(2);
      for (const answer of tokenAnswers) {
        const account = await storeOf(service.oauth).accounts.findById(answer.accountId);
        const current = account!.accessToken!;
        expect(answer.text).toContain(current);
        expect(secrets.foundIn(answer.text, new Set([current]))).toEqual([]);
      }
    });

    it('no log line holds a secret', () => {
      expect(logLines.length).toBeGreaterThan(20);
      expect(secrets.foundIn(logLines.join('\n'))).toEqual([]);
    });

    it('no HTTP answer (body or header), error message or notification holds a secret', () => {
      expect(answers.length).toBeGreaterThan(20);
      const leaks = answers.flatMap((answer) =>
        secrets.foundIn(answer.text).map((label) => `${label} in ${answer.where}`),
      );
      expect(leaks).toEqual([]);
      expect(receiver.received.length).toBeGreaterThanOrEqual(1);
      for (const notification of receiver.received) {
        expect(secrets.foundIn(`${JSON.stringify(notification.headers)}\n${notification.body}`)).toEqual([]);
      }
    });

    it('no CLI output holds a secret (besides `token`, the designed place)', () => {
      expect(cliOutputs.length).toBeGreaterThanOrEqual(10);
      const leaks = cliOutputs.flatMap((output) =>
        secrets.foundIn(output.text).map((label) => `${label} in ${output.where}`),
      );
      expect(leaks).toEqual([]);
    });

    it('the database holds no secret in clear: the SQLite file and its WAL, or a pg_dump', async () => {
      let stored = '';
      if (factory.kind === 'sqlite') {
        const file = join(database.dataDir, 'social-oauth.db');
        for (const path of [file, `${file}-wal`, `${file}-shm`]) {
          if (existsSync(path)) stored += readFileSync(path).toString('latin1');
        }
        expect(stored.length).toBeGreaterThan(4096);
      } else {
        const url = new URL(database.databaseUrl!);
        const admin = new URL(ADMIN_URL);
        const { stdout } = await run(
          'pg_dump',
          [
            '-h',
            admin.hostname,
            '-p',
            admin.port || '5432',
            '-U',
            admin.username || 'postgres',
            url.pathname.slice(1),
          ],
          {
            maxBuffer: 64 * 1024 * 1024,
            env: { ...process.env, PGPASSWORD: decodeURIComponent(admin.password) },
          },
        );
        stored = stdout;
        expect(stored).toContain('COPY public.social_accounts');
      }
      // Positive control: the stored rows are there (the ledger names the accounts).
      expect(stored).toContain(accountIds.tiktok!);
      expect(secrets.foundIn(stored)).toEqual([]);
    });
  });
}
