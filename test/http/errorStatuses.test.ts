import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../../src/domain/providerName.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { type CuttableProxy, startCuttableProxy } from '../support/cuttableProxy.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from './harness.js';

/**
 * Issue 10, item 11: every refresh failure answers with its own status from the one catalog
 * (src/http/errorCatalog.ts) and a Retry-After wherever the service knows when trying again can help.
 * Before, `token_too_young` (nothing was even sent) and `provider_config_error` (our own credentials)
 * both came back as 502 "the platform failed", and a 502 said nothing of when to try again.
 */
for (const factory of DATABASES) {
  describe(`refresh failures answer with their own status (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database, {
        env: {
          REFRESH_MAX_ATTEMPTS: '2',
          REFRESH_LEASE_SECONDS: '20',
          REFRESH_WAIT_TIMEOUT_MS: '300',
          PROVIDER_TIMEOUT_MS: '2000',
        },
      });
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    }, 60_000);

    async function seededAccount(
      provider: ProviderName,
      externalAccountId: string,
      options: { expired?: boolean; issuedAgoMs?: number } = {},
    ) {
      const now = Date.now();
      const seeded = service.simulator.seedAccount(provider, {
        externalAccountId,
        issuedAt: now - (options.issuedAgoMs ?? 60_000),
        ...(options.expired ? { accessExpiresAt: now - 1000 } : {}),
      });
      return storeOf(service.oauth).accounts.insert(
        {
          ownerId: `owner-of-${externalAccountId}`,
          provider,
          externalAccountId,
          displayName: externalAccountId,
          accessToken: seeded.accessToken,
          refreshToken: seeded.refreshToken,
          expiresAt: seeded.accessExpiresAt,
          refreshTokenExpiresAt: seeded.refreshExpiresAt,
          scopes: seeded.scopes,
          tokenIssuedAt: seeded.issuedAt,
        },
        now,
      );
    }

    const retryAfterOf = (headers: Headers) => Number(headers.get('retry-after'));

    it('409 account_needs_reauth when the platform killed the grant', async () => {
      const account = await seededAccount('tiktok', 'status-dead', { expired: true });
      service.simulator.revokeGrant('tiktok', 'status-dead');
      const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('account_needs_reauth');
    });

    it('409 token_too_young (not 502) for an Instagram token under 24 hours old, with Retry-After until it is 24 hours old', async () => {
      const issuedAgoMs = 60 * 60 * 1000;
      const account = await seededAccount('instagram', 'status-young', { issuedAgoMs });
      service.simulator.resetCounters();
      const response = await service.api('POST', `/v1/accounts/${account.id}/refresh`);
      expect(response.status).toBe(409);
      expect(response.body.error.code).toBe('token_too_young');
      // 23 hours left, give or take the test's own seconds.
      const expected = 24 * 3600 - issuedAgoMs / 1000;
      expect(retryAfterOf(response.headers)).toBeGreaterThan(expected - 60);
      expect(retryAfterOf(response.headers)).toBeLessThanOrEqual(expected + 1);
      expect(service.simulator.refreshCalls('instagram', 'status-young')).toBe(0);
    });

    it('429 rate_limited with the Retry-After the platform gave, when it is longer than we may wait', async () => {
      const account = await seededAccount('youtube', 'status-throttled', { expired: true });
      service.simulator.faults.set('youtube', {
        rateLimitNext: 1,
        retryAfterSeconds: 120,
        routes: ['refresh'],
      });
      try {
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(429);
        expect(response.body.error.code).toBe('rate_limited');
        expect(retryAfterOf(response.headers)).toBeGreaterThanOrEqual(115);
        expect(retryAfterOf(response.headers)).toBeLessThanOrEqual(120);
      } finally {
        service.simulator.faults.clear('youtube');
      }
    });

    it('502 refresh_failed when the platform keeps failing, with Retry-After when the cool-down ends', async () => {
      const account = await seededAccount('tiktok', 'status-down', { expired: true });
      service.simulator.faults.set('tiktok', { failNext: 10, status: 503, routes: ['refresh'] });
      try {
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(502);
        expect(response.body.error.code).toBe('refresh_failed');
        expect(retryAfterOf(response.headers)).toBeGreaterThanOrEqual(1);
        expect(retryAfterOf(response.headers)).toBeLessThanOrEqual(300);
        // Asked again during the cool-down: the same answer, with the time left.
        const again = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(again.status).toBe(502);
        expect(again.headers.get('retry-after')).not.toBeNull();
      } finally {
        service.simulator.faults.clear('tiktok');
      }
    });

    it('503 refresh_in_progress with Retry-After while another process holds the refresh', async () => {
      const account = await seededAccount('youtube', 'status-held', { expired: true });
      const held = await storeOf(service.oauth).accounts.tryAcquireRefreshLease(
        account.id,
        'another-process',
        Date.now(),
        20_000,
      );
      expect(held).not.toBeNull();
      try {
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(503);
        expect(response.body.error.code).toBe('refresh_in_progress');
        expect(retryAfterOf(response.headers)).toBeGreaterThanOrEqual(1);
      } finally {
        await storeOf(service.oauth).accounts.releaseRefreshLease(account.id, 'another-process');
      }
    });

    it('500 provider_config_error (not 502) when the platform refuses our client credentials', async () => {
      const misconfigured = await startTestService(database, {
        simulator: service.simulator,
        env: { TIKTOK_CLIENT_SECRET: 'not-the-registered-secret', REFRESH_MAX_ATTEMPTS: '2' },
      });
      try {
        const account = await seededAccount('tiktok', 'status-misconfigured', { expired: true });
        const response = await misconfigured.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(500);
        expect(response.body.error.code).toBe('provider_config_error');
        expect(response.body.error.message).not.toContain('not-the-registered-secret');
      } finally {
        await misconfigured.close();
      }
    });
  });
}

/**
 * The status page used to turn every error without its own statusCode into 400: a database outage
 * (503 with Retry-After in the API) told a person their request was wrong. Through a relay we can
 * cut, the service loses its PostgreSQL for real.
 */
const postgres = DATABASES.find((factory) => factory.kind === 'postgres');
describe.skipIf(postgres === undefined)(
  'the status page keeps the catalog status of an outage (postgres)',
  () => {
    let database: TestDatabase;
    let proxy: CuttableProxy;
    let service: TestService;

    beforeAll(async () => {
      database = await postgres!.create();
      const target = new URL(database.databaseUrl!);
      proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
      service = await startTestService(
        { ...database, databaseUrl: proxy.through(database.databaseUrl!) },
        { env: { REFRESHER_ENABLED: 'false' } },
      );
    });
    afterAll(async () => {
      await service?.close().catch(() => {});
      await proxy?.close();
      await database?.drop();
    }, 60_000);

    it('answers 503 with Retry-After (not 400) when the database is unreachable', async () => {
      const created = await service.api('POST', '/v1/portal-sessions', { owner_id: 'outage-owner' });
      expect(created.status).toBe(201);
      const opened = await fetch(created.body.url, { redirect: 'manual' });
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      expect((await fetch(`${service.baseUrl}/portal`, { headers: { cookie } })).status).toBe(200);

      await proxy.cut();
      const page = await fetch(`${service.baseUrl}/portal`, { headers: { cookie } });
      expect(page.status).toBe(503);
      expect(page.headers.get('retry-after')).toBe('5');
      expect(page.headers.get('content-type')).toContain('text/html');
      // The API says the same through its JSON error.
      const api = await service.api('GET', '/v1/accounts?owner_id=outage-owner');
      expect(api.status).toBe(503);
      expect(api.body.error.code).toBe('unavailable');
    });
  },
);
