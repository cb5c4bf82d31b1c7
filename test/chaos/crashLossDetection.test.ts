import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialAccount } from '../../src/domain/account.js';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { openTestApp } from '../support/app.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS, simulatorEnv, startTestSimulator } from '../support/simulator.js';
import { seedAccounts } from './chaosSupport.js';

/**
 * Regression: a process killed after TikTok rotated the refresh token and before our commit leaves
 * no ledger row, so the invalid_grant the next refresh earned was recorded as an ordinary dead
 * grant (`possiblyLostInFlight` false): the loss went undetected. The dead process leaves its
 * lease behind, lapsed but never released; whoever takes such a lease now flags the loss.
 */
for (const factory of DATABASES) {
  describe(`bug: a TikTok rotation lost to a crash was not flagged possiblyLostInFlight (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    /** What the dead process did: spend the stored refresh token at TikTok, then die. */
    async function spendAtTikTok(account: SocialAccount): Promise<void> {
      const response = await fetch(`${simulator.baseUrlFor('tiktok')}/v2/oauth/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          client_key: SIM_CLIENTS.tiktok.clientId,
          client_secret: SIM_CLIENTS.tiktok.clientSecret,
          grant_type: 'refresh_token',
          refresh_token: account.refreshToken!,
        }),
      });
      expect(response.status).toBe(200);
    }

    async function needsReauthDetail(accountId: string) {
      return (await storeOf(app).ledger.list({ accountId, type: 'needs_reauth' })).events[0]?.detail;
    }

    it('flags the invalid_grant after a lease its holder never released', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'crashed-holder');
      // The holder took the lease, spent the token, and was killed; its lease has lapsed since
      // (a 50 ms one here: on PostgreSQL leases run by the database's clock, not the caller's).
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account!.id, 'killed-process', Date.now(), 50),
      ).not.toBeNull();
      await spendAtTikTok(account!);
      await new Promise((resolve) => setTimeout(resolve, 100));

      const { account: after, result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({
        success: false,
        reason: 'needs_reauth',
        providerErrorCode: 'invalid_grant',
      });
      expect(after.status).toBe('needs_reauth');
      expect(await needsReauthDetail(account!.id)).toMatchObject({ possiblyLostInFlight: true });
    });

    it('does not flag an invalid_grant after a cleanly released lease (the grant died elsewhere)', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'clean-holder');
      const now = Date.now();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account!.id, 'other-process', now, 60_000),
      ).not.toBeNull();
      await storeOf(app).accounts.releaseRefreshLease(account!.id, 'other-process');
      await spendAtTikTok(account!);

      const { result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({ success: false, reason: 'needs_reauth' });
      expect(await needsReauthDetail(account!.id)).toMatchObject({ possiblyLostInFlight: false });
    });
  });
}
