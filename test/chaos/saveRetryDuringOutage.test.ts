import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import type { SaveTokensOptions, TokenUpdate } from '../../src/store/accountRepository.js';
import { openTestApp } from '../support/app.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { simulatorEnv, startTestSimulator } from '../support/simulator.js';
import { seedAccounts } from './chaosSupport.js';

/**
 * Regression: the commit of freshly rotated TikTok tokens was retried 5 times over about three
 * seconds and then given up, so a PostgreSQL restart that took four seconds lost accounts (the
 * crash test's database-fault run lost two). The commit is now retried for as long as this
 * process's refresh lease keeps every other refresher away.
 */
for (const factory of DATABASES) {
  describe(`bug: a database outage longer than 3 s during the commit lost a rotated TikTok token (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    const slept: number[] = [];

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      let offset = 0;
      // Sleeping moves this clock on, so a long outage takes no real time.
      const clock = { now: () => Date.now() + offset };
      app = await openTestApp(database, {
        clock,
        sleep: async (ms) => {
          slept.push(ms);
          offset += ms;
        },
        env: { ...simulatorEnv(simulator), REFRESH_LEASE_SECONDS: '60' },
      });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    it('keeps retrying the commit while the lease holds, and stores the rotated token once the database is back', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'outage');
      const accounts = storeOf(app).accounts;
      const saveTokens = accounts.saveTokens.bind(accounts);
      let failures = 20; // 20 failed commits: about 17 s of outage at up to 1 s between tries
      accounts.saveTokens = async (
        id: string,
        update: TokenUpdate,
        now: number,
        expectedVersion?: number,
        options?: SaveTokensOptions,
      ) => {
        if (failures-- > 0) throw new Error('Connection terminated unexpectedly');
        return saveTokens(id, update, now, expectedVersion, options);
      };
      try {
        const { account: after, result } = await app.tokens.refreshOAuthToken(account!.id);
        expect(result).toMatchObject({ success: true, attempts: 1 });
        expect(after.status).toBe('active');
        expect(simulator.isRefreshTokenValid('tiktok', after.refreshToken!)).toBe(true);
        expect(simulator.refreshCalls('tiktok', account!.externalAccountId)).toBe(1);
        expect(slept.reduce((a, b) => a + b, 0)).toBeGreaterThan(15_000);
      } finally {
        accounts.saveTokens = saveTokens;
      }
    });

    it('still gives up once the lease has run out (another refresher may hold the account by then)', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'outage-long');
      const accounts = storeOf(app).accounts;
      const saveTokens = accounts.saveTokens.bind(accounts);
      accounts.saveTokens = async () => {
        throw new Error('Connection terminated unexpectedly');
      };
      const before = slept.length;
      try {
        await expect(app.tokens.refreshOAuthToken(account!.id)).rejects.toThrow('Connection terminated');
        const waited = slept.slice(before).reduce((a, b) => a + b, 0);
        expect(waited).toBeLessThanOrEqual(60_000);
        expect(waited).toBeGreaterThan(50_000);
      } finally {
        accounts.saveTokens = saveTokens;
      }
    });
  });
}
