import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import { generateCodeVerifier } from '../../src/platforms/pkce.js';
import { YouTubeProvider } from '../../src/platforms/youtube/oauthClient.js';
import { AccountLifecycle } from '../../src/service/accountLifecycle.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { followAuthorizeRedirect } from '../../src/simulator/consentFlow.js';
import { insertSeededAccount } from '../support/accounts.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS, startTestSimulator } from '../support/simulator.js';
import { connectThroughBrowser, RETURN_ORIGIN, startTestService, type TestService } from './harness.js';

/**
 * Issue 11 (TikTok and YouTube) through the real HTTP service and the simulator: partial consent at
 * connect, revocation that the platform must confirm, reconnects that keep the refresh token, and
 * Google apps in "Testing" status.
 */

const DAY = 86_400_000;
const UPLOAD = 'https://www.googleapis.com/auth/youtube.upload';
const READONLY = 'https://www.googleapis.com/auth/youtube.readonly';

for (const factory of DATABASES) {
  describe(`platform truth over HTTP (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    const clock = new ManualClock(Date.now());

    beforeAll(async () => {
      database = await factory.create();
      const simulator = await startTestSimulator({ clock });
      service = await startTestService(database, { clock, simulator });
    });
    afterAll(async () => {
      await service?.close();
      await service?.simulator.close();
      await database?.drop();
    });

    /** An account whose grant exists in the simulator, stored as if connected earlier. */
    async function storedAccount(
      provider: ProviderName,
      externalAccountId: string,
      options: { expired?: boolean; scopes?: string[]; ownerId?: string } = {},
    ) {
      const now = clock.now();
      return insertSeededAccount(
        storeOf(service.oauth).accounts,
        service.simulator,
        provider,
        {
          externalAccountId,
          issuedAt: now - 3 * 3_600_000,
          ...(options.expired ? { accessExpiresAt: now - 1000 } : {}),
          ...(options.scopes ? { scopes: options.scopes } : {}),
        },
        { ownerId: options.ownerId ?? `owner-of-${externalAccountId}`, now },
      );
    }

    async function statusPage(ownerId: string): Promise<string> {
      const created = await service.api('POST', '/v1/portal-sessions', { owner_id: ownerId });
      const opened = await fetch(created.body.url, { redirect: 'manual' });
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      return (await fetch(`${service.baseUrl}/portal`, { headers: { cookie } })).text();
    }

    describe('partial consent at connect', () => {
      it('refuses a TikTok grant without video.publish: back to return_to with missing_scopes, nothing stored, the grant revoked, the ledger told', async () => {
        const before = await storeOf(service.oauth).accounts.count();
        const landed = await connectThroughBrowser(service, {
          provider: 'tiktok',
          ownerId: 'owner-partial-tiktok',
          consent: { externalAccountId: 'tt-partial', withheldScopes: ['video.publish'] },
        });
        expect(landed.exit?.origin).toBe(RETURN_ORIGIN);
        expect(Object.fromEntries(landed.exit!.searchParams)).toMatchObject({
          flow: '1',
          status: 'error',
          provider: 'tiktok',
          error: 'missing_scopes',
          missing: 'video.publish',
        });
        expect(await storeOf(service.oauth).accounts.count()).toBe(before);
        expect(await storeOf(service.oauth).accounts.findByExternalId('tiktok', 'tt-partial')).toBeNull();
        expect(service.simulator.hasLiveGrant('tiktok', 'tt-partial')).toBe(false);
        const events = await service.api('GET', '/v1/events?type=connect_refused');
        expect(events.status).toBe(200);
        expect(events.body.events).toContainEqual(
          expect.objectContaining({
            type: 'connect_refused',
            reason: 'missing_scopes',
            detail: expect.objectContaining({
              provider: 'tiktok',
              ownerId: 'owner-partial-tiktok',
              missingScopes: ['video.publish'],
              platformRevoked: true,
            }),
          }),
        );
      });

      it('refuses a Google grant without youtube.readonly and revokes it (its refresh token is dead)', async () => {
        const landed = await connectThroughBrowser(service, {
          provider: 'youtube',
          ownerId: 'owner-partial-youtube',
          consent: { externalAccountId: 'UCpartial', withheldScopes: [READONLY] },
        });
        expect(landed.exit?.searchParams.get('error')).toBe('missing_scopes');
        expect(landed.exit?.searchParams.get('missing')).toBe(READONLY);
        expect(await storeOf(service.oauth).accounts.findByExternalId('youtube', 'UCpartial')).toBeNull();
        expect(service.simulator.hasLiveGrant('youtube', 'UCpartial')).toBe(false);
      });

      it('leaves an account already connected untouched when its reconnect lacks a scope, and files the event under it', async () => {
        const account = await storedAccount('tiktok', 'tt-reconnect-partial', { ownerId: 'owner-rp' });
        const landed = await connectThroughBrowser(service, {
          provider: 'tiktok',
          ownerId: 'owner-rp',
          consent: { externalAccountId: 'tt-reconnect-partial', withheldScopes: ['video.upload'] },
        });
        expect(landed.exit?.searchParams.get('error')).toBe('missing_scopes');
        const stored = await storeOf(service.oauth).accounts.findById(account.id);
        expect(stored).toMatchObject({ status: 'active', accessToken: account.accessToken });
        const events = await service.api('GET', `/v1/events?account_id=${account.id}`);
        expect(events.body.events.map((e: { type: string }) => e.type)).toContain('connect_refused');
      });

      it('tells the user on the done page which permissions were missing', async () => {
        const page = await fetch(
          `${service.baseUrl}/connect/done?status=error&provider=youtube&error=missing_scopes&missing=${encodeURIComponent(READONLY)}`,
        );
        const html = await page.text();
        expect(html).toContain('Not every permission was granted');
        expect(html).toContain(READONLY);
      });

      it('reports the missing scopes of a stored account in the API and on the status page', async () => {
        const account = await storedAccount('youtube', 'UCupload-only', {
          scopes: [UPLOAD],
          ownerId: 'owner-mo',
        });
        const api = await service.api('GET', `/v1/accounts/${account.id}`);
        expect(api.body.missing_scopes).toEqual([READONLY]);
        const complete = await storedAccount('tiktok', 'tt-complete', { ownerId: 'owner-mo' });
        expect((await service.api('GET', `/v1/accounts/${complete.id}`)).body.missing_scopes).toEqual([]);
        const html = await statusPage('owner-mo');
        expect(html).toContain('Missing permissions');
        expect(html).toContain(READONLY);
      });
    });

    describe('revocation the platform must confirm', () => {
      it('revokes a TikTok account whose access token expired: refreshes first, then the grant is really gone', async () => {
        const account = await storedAccount('tiktok', 'tt-revoke-expired', { expired: true });
        const response = await service.api('POST', `/v1/accounts/${account.id}/revoke`);
        expect(response.status).toBe(200);
        expect(response.body.platform_revoked).toBe(true);
        expect(response.body.account.status).toBe('revoked');
        expect(service.simulator.hasLiveGrant('tiktok', 'tt-revoke-expired')).toBe(false);
        expect(service.simulator.isRefreshTokenValid('tiktok', account.refreshToken!)).toBe(false);
      });

      it('revokes a Google account by its refresh token even when its access token expired', async () => {
        const account = await storedAccount('youtube', 'UCrevoke-expired', { expired: true });
        const response = await service.api('POST', `/v1/accounts/${account.id}/revoke`);
        expect(response.body.platform_revoked).toBe(true);
        expect(service.simulator.isRefreshTokenValid('youtube', account.refreshToken!)).toBe(false);
        expect(service.simulator.hasLiveGrant('youtube', 'UCrevoke-expired')).toBe(false);
      });

      it('says platform_revoked false when the platform refused, and still deletes the tokens', async () => {
        for (const [provider, id] of [
          ['youtube', 'UCalready-gone'],
          ['tiktok', 'tt-already-gone'],
        ] as const) {
          const account = await storedAccount(provider, id);
          // The user removed the app on the platform: every token is refused from now on.
          service.simulator.revokeGrant(provider, id);
          const response = await service.api('POST', `/v1/accounts/${account.id}/revoke`);
          expect(response.status).toBe(200);
          expect(response.body.platform_revoked).toBe(false);
          expect(response.body.account.status).toBe('revoked');
          expect(response.body.account.has_refresh_token).toBe(false);
        }
      });
    });

    describe('reconnects', () => {
      it('keeps the stored refresh token when a reconnect brings none (Google without prompt=consent)', async () => {
        const landed = await connectThroughBrowser(service, {
          provider: 'youtube',
          ownerId: 'owner-keep',
          consent: { externalAccountId: 'UCkeep' },
        });
        const accountId = landed.exit!.searchParams.get('account_id')!;
        const first = (await storeOf(service.oauth).accounts.findById(accountId))!;
        expect(first.refreshToken).not.toBeNull();

        // Google sends a refresh token only at an account's first consent unless prompt=consent: a
        // second consent without it (another client of ours, an older link) brings none.
        const google = new YouTubeProvider(
          {
            ...SIM_CLIENTS.youtube,
            redirectUri: `${service.baseUrl}/oauth/youtube/callback`,
            baseUrl: service.simulator.baseUrlFor('youtube'),
          },
          { timeoutMs: 2000 },
        );
        const verifier = generateCodeVerifier();
        const url = google.createAuthorizationUrl({
          state: 's',
          codeVerifier: verifier,
          scopes: google.defaultScopes,
        });
        url.searchParams.delete('prompt');
        service.simulator.queueConsent('youtube', { externalAccountId: 'UCkeep' });
        const redirect = await followAuthorizeRedirect(url);
        const tokens = await google.exchangeAuthorizationCode(redirect.code!, verifier);
        expect(tokens.refreshToken).toBeNull();

        const lifecycle = new AccountLifecycle({
          accounts: storeOf(service.oauth).accounts,
          ledger: storeOf(service.oauth).ledger,
          providers: storeOf(service.oauth).providers,
          clock,
          logger: service.oauth.logger,
        });
        const outcome = await lifecycle.connect({
          ownerId: 'owner-keep',
          provider: 'youtube',
          tokens,
          profile: await google.fetchProfile(tokens.accessToken),
          connectedWithPkce: true,
        });
        expect(outcome.kind).toBe('reconnected');
        const after = (await storeOf(service.oauth).accounts.findById(accountId))!;
        expect(after.accessToken).toBe(tokens.accessToken);
        expect(after.refreshToken).toBe(first.refreshToken);
        expect(service.simulator.isRefreshTokenValid('youtube', after.refreshToken!)).toBe(true);
        // And the kept refresh token works: a forced refresh succeeds.
        const refreshed = await service.api('POST', `/v1/accounts/${accountId}/refresh`);
        expect(refreshed.status).toBe(200);
        expect(refreshed.body.account.status).toBe('active');
      });
    });

    describe('Google apps in Testing status', () => {
      it('stores and shows the 7-day end, spends no keep-alive refresh before it, and needs the user after it', async () => {
        service.simulator.settings.googlePublishingStatus = 'testing';
        let accountId: string;
        const connectedAt = clock.now();
        try {
          const landed = await connectThroughBrowser(service, {
            provider: 'youtube',
            ownerId: 'owner-testing',
            consent: { externalAccountId: 'UCtesting' },
          });
          expect(landed.exit?.searchParams.get('status')).toBe('connected');
          accountId = landed.exit!.searchParams.get('account_id')!;
        } finally {
          service.simulator.settings.googlePublishingStatus = 'production';
        }
        const endsAt = connectedAt + 7 * DAY - 1000;
        const api = await service.api('GET', `/v1/accounts/${accountId}`);
        expect(api.body.refresh_token_expires_at).toBe(new Date(endsAt).toISOString());
        expect(api.body.grant_ends_at).toBe(new Date(endsAt).toISOString());
        // The keep-alive refresher looks at it only when it ends: a refresh cannot extend it.
        expect(
          (await storeOf(service.oauth).accounts.scheduling.readSchedule(accountId))?.nextRefreshAt,
        ).toBe(endsAt);
        const html = await statusPage('owner-testing');
        expect(html).toContain('Connection ends');

        // A refresh on demand works and does not move the end.
        clock.advance(2 * DAY);
        const refreshed = await service.api('POST', `/v1/accounts/${accountId}/refresh`);
        expect(refreshed.body.account.grant_ends_at).toBe(new Date(endsAt).toISOString());
        expect(
          (await storeOf(service.oauth).accounts.scheduling.readSchedule(accountId))?.nextRefreshAt,
        ).toBe(endsAt);

        clock.advance(5 * DAY);
        const dead = await service.api('POST', `/v1/accounts/${accountId}/refresh`);
        const account = (await storeOf(service.oauth).accounts.findById(accountId))!;
        expect(account.status).toBe('needs_reauth');
        expect(dead.status).toBeGreaterThanOrEqual(400);
      });
    });
  });
}
