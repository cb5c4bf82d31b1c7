import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../src/domain/providerName.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { spawnCli, stopGracefully } from './chaos/chaosSupport.js';
import { eventually, reservePort } from './http/harness.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const DAY = 86_400_000;
const SECRET = 'whsec-start-test';

/**
 * Regression (issue 10, item 9): `npm start` polled ensureValidAccessToken over the first 1,000
 * accounts every 10 s instead of running the refresher: an account whose access token was not about
 * to expire was never refreshed, however close its grant was to dying (the keep-alive policy was
 * ignored), and accounts past the first 1,000 were never looked at. It now runs the real refresher
 * and the notification outbox, as `serve` and `worker` do.
 */
for (const factory of DATABASES) {
  describe(`bug: npm start did not run the refresher (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    const received: Array<{ type: string; accountId: string }> = [];
    const receiver = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      received.push({ type: body.type, accountId: body.account.id });
      response.writeHead(204).end();
    });

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
    });
    afterAll(async () => {
      await app?.close();
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
      await simulator?.close();
      await database?.drop();
    });

    /** An account connected `ageMs` ago, known to the simulator and to our store. */
    async function connectedAgo(provider: ProviderName, externalAccountId: string, ageMs: number) {
      const connectedAt = Date.now() - ageMs;
      return insertSeededAccount(
        storeOf(app).accounts,
        simulator,
        provider,
        {
          externalAccountId,
          issuedAt: connectedAt,
          // Instagram: a 60-day token with 2 days left, far from the 5-minute refresh threshold.
          ...(provider === 'instagram' ? { accessExpiresAt: connectedAt + 60 * DAY } : {}),
        },
        { ownerId: 'owner-start', now: connectedAt },
      );
    }

    it('keeps accounts alive by their keep-alive time, and delivers notifications, until stopped', async () => {
      // Past its keep-alive time (57 days): the refresher refreshes it although its token has 2 days left.
      const instagram = await connectedAgo('instagram', 'start-ig', 58 * DAY);
      // Due too, and dead at the platform: needs_reauth, and its notification goes to WEBHOOK_URL.
      const tiktok = await connectedAgo('tiktok', 'start-tiktok', 178 * DAY);
      simulator.revokeGrant('tiktok', tiktok.externalAccountId);

      const port = await reservePort();
      const { port: receiverPort } = receiver.address() as AddressInfo;
      const start = spawnCli(
        ['start'],
        testEnv(database, {
          ...simulatorEnv(simulator, `http://127.0.0.1:${port}`),
          HOST: '127.0.0.1',
          PORT: String(port),
          PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
          WEBHOOK_URL: `http://127.0.0.1:${receiverPort}/hooks`,
          WEBHOOK_SECRET: SECRET,
          REFRESHER_INTERVAL_SECONDS: '1',
        }),
      );
      try {
        await eventually(async () => {
          expect(simulator.refreshCalls('instagram', instagram.externalAccountId)).toBe(1);
          const after = (await storeOf(app).accounts.findById(instagram.id))!;
          expect(after.status).toBe('active');
          expect(simulator.isAccessTokenValid('instagram', after.accessToken!)).toBe(true);
          expect((await storeOf(app).accounts.findById(tiktok.id))!.status).toBe('needs_reauth');
          expect(received).toContainEqual({ type: 'account.needs_reauth', accountId: tiktok.id });
        }, 90_000).catch((error) => {
          throw new Error(`${(error as Error).message}\n${start.output()}`);
        });
      } finally {
        await stopGracefully(start);
      }
      expect(await start.exited).toBe(0);
      expect(start.output()).toContain('Shutting down');
      expect(start.output()).toMatch(/instagram .* REFRESHED/);
    }, 120_000);

    it('refuses a bad --interval with a usage error', async () => {
      const start = spawnCli(['start', '--interval', 'often'], testEnv(database, simulatorEnv(simulator)));
      expect(await start.exited).toBe(2);
      expect(start.output()).toContain('--interval must be a whole number');
    }, 60_000);
  });
}
