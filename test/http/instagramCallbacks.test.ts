import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/domain/logger.js';
import { signMetaRequest } from '../../src/http/webhookSignatures.js';
import { instagramAppScopedId } from '../../src/platforms/instagram/simulatorRoutes.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS } from '../support/simulator.js';
import { connectThroughBrowser, startTestService, type TestService } from './harness.js';

/**
 * Issue 11, Instagram, through the real HTTP service: which account a reconnect binds, and which
 * user ids Meta's deauthorize and data-deletion callbacks may carry.
 */

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

for (const factory of DATABASES) {
  describe(`Instagram reconnect and Meta callbacks (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    const logged: Array<{ level: string; obj: object; msg?: string }> = [];
    const logger: Logger = {
      debug: (obj, msg) => logged.push({ level: 'debug', obj, msg }),
      info: (obj, msg) => logged.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => logged.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => logged.push({ level: 'error', obj, msg }),
    };

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database, { logger });
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    });

    async function connect(ownerId: string, externalAccountId: string) {
      const landed = await connectThroughBrowser(service, {
        provider: 'instagram',
        ownerId,
        consent: { externalAccountId },
      });
      return {
        status: landed.exit!.searchParams.get('status'),
        accountId: landed.exit!.searchParams.get('account_id')!,
      };
    }

    const callback = (path: 'deauthorize' | 'data-deletion', userId: string) =>
      fetch(
        `${service.baseUrl}/webhooks/instagram/${path}`,
        form({
          signed_request: signMetaRequest(
            { algorithm: 'HMAC-SHA256', user_id: userId, issued_at: Math.floor(Date.now() / 1000) + 5 },
            SIM_CLIENTS.instagram.clientSecret,
          ),
        }),
      );
    const account = async (id: string) => (await service.api('GET', `/v1/accounts/${id}`)).body;

    it('bug: a reconnect bound the account the browser was still logged in to; now the user logs in afresh', async () => {
      const first = await connect('owner-reconnect', '17841400000003001');
      expect(first.status).toBe('connected');
      // The same person now connects their second Instagram account, in the same browser.
      const second = await connect('owner-reconnect', '17841400000003002');
      expect(second.status).toBe('connected');
      expect((await account(second.accountId)).external_account_id).toBe('17841400000003002');
    });

    it('bug: a deauthorize callback carrying the code exchange user_id matched no account; now it revokes', async () => {
      const { accountId } = await connect('owner-deauth', '17841400000003003');
      const response = await callback('deauthorize', instagramAppScopedId('17841400000003003'));
      expect(response.status).toBe(200);
      expect((await account(accountId)).status).toBe('revoked');
      const events = (await service.api('GET', `/v1/events?account_id=${accountId}`)).body.events;
      expect(events.at(-1)).toMatchObject({
        type: 'revoked',
        reason: 'platform_deauthorized',
        detail: { matchedOn: 'alternate_id' },
      });
    });

    it('a data-deletion callback carrying the code exchange user_id deletes the tokens', async () => {
      const { accountId } = await connect('owner-deletion', '17841400000003004');
      const response = await callback('data-deletion', instagramAppScopedId('17841400000003004'));
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ confirmation_code: expect.any(String) });
      expect((await account(accountId)).status).toBe('revoked');
      expect((await storeOf(service.oauth).accounts.findById(accountId))?.accessToken).toBeNull();
    });

    it('a callback carrying /me user_id still revokes, matched on the external id', async () => {
      const { accountId } = await connect('owner-me-id', '17841400000003005');
      expect((await callback('deauthorize', '17841400000003005')).status).toBe(200);
      const events = (await service.api('GET', `/v1/events?account_id=${accountId}`)).body.events;
      expect(events.at(-1)).toMatchObject({ type: 'revoked', detail: { matchedOn: 'external_id' } });
    });

    it('a reconnect keeps both ids: a later callback by the exchange user_id still finds the account', async () => {
      const { accountId } = await connect('owner-both', '17841400000003006');
      const again = await connect('owner-both', '17841400000003006');
      expect(again).toEqual({ status: 'reconnected', accountId });
      expect((await callback('deauthorize', instagramAppScopedId('17841400000003006'))).status).toBe(200);
      expect((await account(accountId)).status).toBe('revoked');
    });

    it('a callback naming no account we hold is acknowledged (200) and logged, and changes nothing', async () => {
      const { accountId } = await connect('owner-bystander', '17841400000003007');
      logged.length = 0;
      for (const path of ['deauthorize', 'data-deletion'] as const) {
        expect((await callback(path, '99999999999999999')).status).toBe(200);
      }
      expect((await account(accountId)).status).toBe('active');
      const unmatched = logged.filter((entry) => /names no Instagram account/.test(entry.msg ?? ''));
      expect(unmatched).toHaveLength(2);
      expect(unmatched[0]!.obj).toMatchObject({ provider: 'instagram', platformUserId: '99999999999999999' });
    });
  });
}
