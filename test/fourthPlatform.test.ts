import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import { isProviderName, PROVIDER_NAMES, registerPlatform } from '../src/index.js';
import { connectThroughBrowser, RETURN_ORIGIN, startTestService, type TestService } from './http/harness.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { mastodonish } from './support/platforms/mastodonish/index.js';

/**
 * Issue 12's proof that a platform is a folder: a throwaway fourth platform, all of it in
 * test/support/platforms/mastodonish/ (its OAuth client, its simulator routes, its definition),
 * registered through the package's public registerPlatform, is connected, refreshed and revoked
 * through the real HTTP service and shown on the status page, on both databases (the stored
 * `provider` column no longer lists three names: migration 011_i12_provider_check).
 */
registerPlatform(mastodonish);

describe('a fourth platform from one folder', () => {
  it('is registered everywhere the registry is read', () => {
    expect(PROVIDER_NAMES).toContain('mastodonish');
    expect(isProviderName('mastodonish')).toBe(true);
    expect(isProviderName('myspace')).toBe(false);
    // Registering the same definition again changes nothing.
    registerPlatform(mastodonish);
    expect(PROVIDER_NAMES.filter((name) => name === 'mastodonish')).toHaveLength(1);
  });
});

for (const factory of DATABASES) {
  describe(`a fourth platform over HTTP (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    const clock = new ManualClock(Date.now());

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database, { clock });
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    });

    async function statusPage(ownerId: string): Promise<string> {
      const created = await service.api('POST', '/v1/portal-sessions', { owner_id: ownerId });
      expect(created.status).toBe(201);
      const opened = await fetch(created.body.url, { redirect: 'manual' });
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      return (await fetch(`${service.baseUrl}/portal`, { headers: { cookie } })).text();
    }

    it('connects, refreshes and revokes an account, and the status page shows it', async () => {
      const ownerId = `owner-mastodonish-${factory.kind}`;
      const landed = await connectThroughBrowser(service, {
        provider: 'mastodonish',
        ownerId,
        consent: { externalAccountId: '109000000000000777', displayName: 'fourth creator' },
      });
      expect(landed.exit?.origin).toBe(RETURN_ORIGIN);
      expect(landed.exit?.searchParams.get('status')).toBe('connected');
      expect(landed.exit?.searchParams.get('provider')).toBe('mastodonish');
      const accountId = landed.exit?.searchParams.get('account_id');
      expect(accountId).toBeTruthy();

      const account = await service.api('GET', `/v1/accounts/${accountId}`);
      expect(account.status).toBe(200);
      expect(account.body).toMatchObject({
        owner_id: ownerId,
        provider: 'mastodonish',
        external_account_id: '109000000000000777',
        display_name: 'fourth creator',
        status: 'active',
      });

      const page = await statusPage(ownerId);
      expect(page).toContain('data-provider="mastodonish"');
      expect(page).toContain('Mastodonish');
      expect(page).toContain('fourth creator');

      const first = await service.api('POST', `/v1/accounts/${accountId}/token`);
      expect(first.status).toBe(200);
      expect(service.simulator.isAccessTokenValid('mastodonish', first.body.access_token)).toBe(true);

      const refreshed = await service.api('POST', `/v1/accounts/${accountId}/refresh`);
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.account.last_refresh_at).not.toBeNull();
      expect(service.simulator.refreshCalls('mastodonish', '109000000000000777')).toBe(1);
      const second = await service.api('POST', `/v1/accounts/${accountId}/token`);
      expect(second.body.access_token).not.toBe(first.body.access_token);
      expect(service.simulator.isAccessTokenValid('mastodonish', second.body.access_token)).toBe(true);

      const revoked = await service.api('POST', `/v1/accounts/${accountId}/revoke`);
      expect(revoked.status).toBe(200);
      expect(revoked.body.platform_revoked).toBe(true);
      expect(revoked.body.account.status).toBe('revoked');
      expect(service.simulator.hasLiveGrant('mastodonish', '109000000000000777')).toBe(false);
      expect(await statusPage(ownerId)).toContain('Revoked');
    });

    it('an unknown platform is still refused at the edge (HTTP schema from the registry)', async () => {
      const created = await service.api('POST', '/v1/connect-sessions', {
        provider: 'myspace',
        owner_id: 'owner-unknown',
        return_to: `${RETURN_ORIGIN}/done`,
      });
      expect(created.status).toBe(400);
    });
  });
}
