import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { capabilitiesOf } from '../../src/platforms/capabilities.js';
import { PROVIDER_NAMES } from '../../src/platforms/registry.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import {
  browse,
  connectThroughBrowser,
  RETURN_ORIGIN,
  startTestService,
  type TestService,
} from './harness.js';

const DAY_MS = 86_400_000;

for (const factory of DATABASES) {
  describe(`connect flow over HTTP (${factory.kind})`, () => {
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

    for (const provider of PROVIDER_NAMES) {
      it(`connects a ${provider} account end to end and hands out a token the platform accepts`, async () => {
        const externalAccountId = provider === 'instagram' ? '17841400000000777' : `${provider}-user-1`;
        const landed = await connectThroughBrowser(service, {
          provider,
          ownerId: `owner-${provider}`,
          consent: { externalAccountId, displayName: `${provider} creator` },
        });

        expect(landed.exit?.origin).toBe(RETURN_ORIGIN);
        expect(landed.exit?.searchParams.get('flow')).toBe('1');
        expect(landed.exit?.searchParams.get('status')).toBe('connected');
        expect(landed.exit?.searchParams.get('provider')).toBe(provider);
        const accountId = landed.exit?.searchParams.get('account_id');
        expect(accountId).toBeTruthy();

        const account = await service.api('GET', `/v1/accounts/${accountId}`);
        expect(account.status).toBe(200);
        expect(account.body).toMatchObject({
          owner_id: `owner-${provider}`,
          provider,
          external_account_id: externalAccountId,
          display_name: `${provider} creator`,
          status: 'active',
        });
        const token = await service.api('POST', `/v1/accounts/${accountId}/token`);
        expect(token.status).toBe(200);
        expect(account.text).not.toContain(token.body.access_token);
        expect(service.simulator.isAccessTokenValid(provider, token.body.access_token)).toBe(true);
        expect(token.body.refreshed).toBe(false);

        const events = await service.api('GET', `/v1/events?account_id=${accountId}`);
        expect(events.body.events.map((e: { type: string }) => e.type)).toEqual(['connected']);
      });
    }

    it('asks the platforms for the documented scopes, PKCE where they take it, and offline access on Google', async () => {
      const authorizeUrls = [];
      for (const provider of PROVIDER_NAMES) {
        const created = await service.api('POST', '/v1/connect-sessions', {
          provider,
          owner_id: 'scope-check',
        });
        const response = await fetch(created.body.url, { redirect: 'manual' });
        authorizeUrls.push(new URL(response.headers.get('location')!));
      }
      const [instagram, tiktok, youtube] = authorizeUrls as [URL, URL, URL];
      expect(instagram.searchParams.get('scope')).toBe(
        'instagram_business_basic,instagram_business_content_publish',
      );
      expect(tiktok.searchParams.get('scope')).toBe('user.info.basic,video.upload,video.publish');
      expect(tiktok.searchParams.get('client_key')).toBe('sim-tiktok-key');
      expect(tiktok.searchParams.get('code_challenge_method')).toBe('S256');
      // TikTok's S256 is the hex digest (Login Kit for Desktop).
      expect(tiktok.searchParams.get('code_challenge')).toMatch(/^[0-9a-f]{64}$/);
      // youtube.upload to post, youtube.readonly to read the channel: not the full youtube scope.
      expect(youtube.searchParams.get('scope')).toBe(
        'https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly',
      );
      expect(youtube.searchParams.get('access_type')).toBe('offline');
      expect(youtube.searchParams.get('prompt')).toBe('consent');
      expect(youtube.searchParams.get('code_challenge_method')).toBe('S256');
      expect(youtube.searchParams.get('redirect_uri')).toBe(`${service.baseUrl}/oauth/youtube/callback`);
    });

    it('stores the state only as a hash and the PKCE verifier only encrypted', async () => {
      const created = await service.api('POST', '/v1/connect-sessions', {
        provider: 'tiktok',
        owner_id: 'hash-check',
      });
      const state = new URL(created.body.url).pathname.split('/').pop()!;
      const rows = await storeOf(service.oauth)
        .database.db.selectFrom('connect_sessions')
        .selectAll()
        .execute();
      const serialized = JSON.stringify(rows);
      expect(serialized).not.toContain(state);
      const row = rows.find((r) => r.owner_id === 'hash-check')!;
      expect(row.code_verifier).toMatch(/^v1\./);
    });

    it('returns the user to return_to with access_denied when they refuse consent, and stores nothing', async () => {
      const before = await storeOf(service.oauth).accounts.count();
      const landed = await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'owner-denied',
        consent: { externalAccountId: 'tiktok-denier', deny: true },
      });
      expect(landed.exit?.searchParams.get('status')).toBe('error');
      expect(landed.exit?.searchParams.get('error')).toBe('access_denied');
      expect(await storeOf(service.oauth).accounts.count()).toBe(before);
    });

    it('refuses a forged state with a clear page and stores nothing', async () => {
      const before = await storeOf(service.oauth).accounts.count();
      const page = await browse(
        service,
        `${service.baseUrl}/oauth/tiktok/callback?code=stolen&state=forged-state`,
      );
      expect(page.status).toBe(400);
      expect(page.text).toContain('This connect link is not valid');
      expect(await storeOf(service.oauth).accounts.count()).toBe(before);
    });

    it('refuses a replayed callback: a state works once', async () => {
      const landed = await connectThroughBrowser(service, {
        provider: 'youtube',
        ownerId: 'owner-replay',
        consent: { externalAccountId: 'UCreplay' },
      });
      expect(landed.exit?.searchParams.get('status')).toBe('connected');
      const callback = landed.visited.find((url) => url.includes('/oauth/youtube/callback'))!;
      const again = await browse(service, callback);
      expect(again.status).toBe(400);
      expect(again.text).toContain('already used');
      // And the connect link itself is spent too.
      const reopened = await browse(service, landed.sessionUrl);
      expect(reopened.status).toBe(400);
    });

    it('refuses an expired state, before and after the platform', async () => {
      const created = await service.api('POST', '/v1/connect-sessions', {
        provider: 'tiktok',
        owner_id: 'owner-late',
      });
      const state = new URL(created.body.url).pathname.split('/').pop()!;
      const now = clock.now();
      clock.advance(11 * 60_000);
      try {
        const opened = await browse(service, created.body.url);
        expect(opened.status).toBe(400);
        expect(opened.text).toContain('expired');
        const callback = await browse(
          service,
          `${service.baseUrl}/oauth/tiktok/callback?code=x&state=${state}`,
        );
        expect(callback.status).toBe(400);
        expect(callback.text).toContain('expired');
      } finally {
        clock.set(now);
      }
      expect((await storeOf(service.oauth).accounts.list({ ownerId: 'owner-late' })).length).toBe(0);
    });

    it("refuses a state presented at another platform's callback", async () => {
      const created = await service.api('POST', '/v1/connect-sessions', {
        provider: 'tiktok',
        owner_id: 'owner-x',
      });
      const state = new URL(created.body.url).pathname.split('/').pop()!;
      const page = await browse(service, `${service.baseUrl}/oauth/youtube/callback?code=x&state=${state}`);
      expect(page.status).toBe(400);
    });

    it('reconnecting a needs_reauth account makes it active again, with a reconnected event', async () => {
      const first = await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'owner-reconnect',
        consent: { externalAccountId: 'tiktok-reconnect' },
      });
      const accountId = first.exit!.searchParams.get('account_id')!;
      // The user removes the app at TikTok: the next refresh finds out.
      service.simulator.revokeGrant('tiktok', 'tiktok-reconnect');
      const refreshed = await service.api('POST', `/v1/accounts/${accountId}/refresh`);
      expect(refreshed.status).toBe(409);
      expect(refreshed.body.error.code).toBe('account_needs_reauth');

      const second = await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'owner-reconnect',
        consent: { externalAccountId: 'tiktok-reconnect' },
      });
      expect(second.exit?.searchParams.get('status')).toBe('reconnected');
      expect(second.exit?.searchParams.get('account_id')).toBe(accountId);
      const account = await service.api('GET', `/v1/accounts/${accountId}`);
      expect(account.body.status).toBe('active');
      const token = await service.api('POST', `/v1/accounts/${accountId}/token`);
      expect(service.simulator.isAccessTokenValid('tiktok', token.body.access_token)).toBe(true);
    });

    it('refuses to connect a platform account that another owner already holds', async () => {
      const first = await connectThroughBrowser(service, {
        provider: 'instagram',
        ownerId: 'owner-a',
        consent: { externalAccountId: '17841400000000999' },
      });
      const accountId = first.exit!.searchParams.get('account_id')!;
      const second = await connectThroughBrowser(service, {
        provider: 'instagram',
        ownerId: 'owner-b',
        consent: { externalAccountId: '17841400000000999' },
      });
      expect(second.exit?.searchParams.get('status')).toBe('error');
      expect(second.exit?.searchParams.get('error')).toBe('account_owned_by_another_owner');
      const account = await service.api('GET', `/v1/accounts/${accountId}`);
      expect(account.body.owner_id).toBe('owner-a');
      expect((await storeOf(service.oauth).accounts.list({ ownerId: 'owner-b' })).length).toBe(0);
    });

    it("keeps Instagram's long-lived token (about 60 days), not the one-hour one", async () => {
      const landed = await connectThroughBrowser(service, {
        provider: 'instagram',
        ownerId: 'owner-ig-long',
        consent: { externalAccountId: '17841400000000555' },
      });
      const account = await service.api('GET', `/v1/accounts/${landed.exit!.searchParams.get('account_id')}`);
      expect(Date.parse(account.body.expires_at) - clock.now()).toBeGreaterThan(59 * DAY_MS);
    });

    it('bug: an absurd expires_in at connect was clamped without a ledger note; the connected event carries it', async () => {
      // The platform's code exchange answers expires_in 10^12 s (a token believed to live for
      // 31,000 years would never be refreshed): clamped to the documented maximum, and noted, as
      // a refresh answer already was.
      const maxSeconds = capabilitiesOf('tiktok').accessTokenLifetime.maxSeconds;
      service.simulator.faults.set('tiktok', {
        rewriteNext: 1,
        rewrite: ({ body }) => ({ body: { ...(body as object), expires_in: 1e12 } }),
        routes: ['token'],
      });
      let landed: Awaited<ReturnType<typeof connectThroughBrowser>>;
      try {
        landed = await connectThroughBrowser(service, {
          provider: 'tiktok',
          ownerId: 'owner-clamp',
          consent: { externalAccountId: 'tiktok-clamp' },
        });
      } finally {
        service.simulator.faults.clear('tiktok');
      }
      expect(landed.exit?.searchParams.get('status')).toBe('connected');
      const accountId = landed.exit!.searchParams.get('account_id')!;
      const account = (await service.oauth.accounts.findById(accountId))!;
      expect(account.expiresAt! - account.tokenIssuedAt!).toBe(maxSeconds * 1000);
      const [connected] = (await service.oauth.ledger.list({ accountId, type: 'connected' })).events;
      expect(connected!.detail?.lifetimeNotes).toEqual([
        {
          field: 'expires_in',
          received: 'number 1000000000000',
          usedSeconds: maxSeconds,
          why: 'above_documented_maximum',
        },
      ]);
    });

    it('only sends the browser back to allowed origins', async () => {
      const response = await service.api('POST', '/v1/connect-sessions', {
        provider: 'tiktok',
        owner_id: 'o',
        return_to: 'https://evil.example/steal',
      });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('return_to_not_allowed');
    });
  });
}
