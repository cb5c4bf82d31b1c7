import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { seedAccounts } from './chaos/chaosSupport.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

/**
 * Issue 10, item 3: whether a TikTok grant may have been lost was read from the account's latest
 * ledger row only. A `keys_rotated` row, or a later refresh answered 503, after a refresh whose
 * answer never came (the platform rotated, we never heard), hid the loss: the invalid_grant that
 * followed was recorded as an ordinary dead grant. It is now read from every row since the grant
 * was last known good.
 */
for (const factory of DATABASES) {
  describe(`bug: loss detection read only the latest ledger row (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      // One call per refresh, so that each refresh leaves one row; a short timeout for the lost answer.
      app = await openTestApp(database, {
        env: { ...simulatorEnv(simulator), REFRESH_MAX_ATTEMPTS: '1', PROVIDER_TIMEOUT_MS: '300' },
      });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    /** A refresh the platform processes (rotating the token) whose answer never arrives. */
    async function refreshWithLostAnswer(accountId: string) {
      simulator.faults.set('tiktok', { dropAnswerNext: 1, hangMs: 1_000, routes: ['refresh'] });
      const { result } = await app.tokens.refreshOAuthToken(accountId);
      simulator.faults.clear('tiktok');
      expect(result).toMatchObject({ success: false, providerErrorCode: 'timeout' });
    }

    async function needsReauthDetail(accountId: string) {
      return (await storeOf(app).ledger.list({ accountId, type: 'needs_reauth' })).events[0]?.detail;
    }

    it('a keys_rotated row after the unanswered refresh no longer hides the loss', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'hidden-by-keys');
      await refreshWithLostAnswer(account!.id);
      // What `keys rotate` appends for every account it re-encrypts.
      await storeOf(app).ledger.append({ accountId: account!.id, type: 'keys_rotated' }, Date.now());

      const { account: after, result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({ success: false, providerErrorCode: 'invalid_grant' });
      expect(after.status).toBe('needs_reauth');
      expect(await needsReauthDetail(account!.id)).toMatchObject({
        possiblyLostInFlight: true,
        possibleLossCause: 'unanswered_refresh',
      });
    });

    it('a later refresh answered 503 no longer hides the earlier unanswered one', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'hidden-by-503');
      await refreshWithLostAnswer(account!.id);
      simulator.faults.set('tiktok', { failNext: 1, status: 503, routes: ['refresh'] });
      const second = await app.tokens.refreshOAuthToken(account!.id);
      simulator.faults.clear('tiktok');
      expect(second.result).toMatchObject({ success: false, reason: 'provider_error' });

      const { result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({ success: false, providerErrorCode: 'invalid_grant' });
      expect(await needsReauthDetail(account!.id)).toMatchObject({ possiblyLostInFlight: true });
    });

    it('a refresh that succeeded in between clears the history (the grant was known good again)', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'cleared');
      // The platform rotated and we never heard; the stored token is spent. A reconnect brings a
      // new grant, and its invalid_grant later (the user revoked) is an ordinary dead grant.
      await refreshWithLostAnswer(account!.id);
      const fresh = simulator.issueTokens('tiktok', account!.externalAccountId);
      await storeOf(app).accounts.saveTokens(
        account!.id,
        {
          accessToken: fresh.accessToken,
          refreshToken: fresh.refreshToken,
          expiresAt: fresh.accessExpiresAt,
          refreshTokenExpiresAt: fresh.refreshExpiresAt,
          scopes: fresh.scopes,
          tokenIssuedAt: Date.now(),
        },
        Date.now(),
      );
      await storeOf(app).ledger.append({ accountId: account!.id, type: 'reconnected' }, Date.now());
      simulator.revokeGrant('tiktok', account!.externalAccountId);

      const { result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({ success: false, providerErrorCode: 'invalid_grant' });
      expect(await needsReauthDetail(account!.id)).toMatchObject({ possiblyLostInFlight: false });
    });
  });
}
