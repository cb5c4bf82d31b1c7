import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../../src/domain/providerName.js';
import { buildOpenApiDocument } from '../../src/http/openapi.js';
import { API_VERSION } from '../../src/http/routes/health.js';
import { StatusNotifier } from '../../src/service/statusNotifier.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { eventually, startTestService, startWebhookReceiver, type TestService } from './harness.js';

const WEBHOOK_SECRET = 'whsec-test-secret';

for (const factory of DATABASES) {
  describe(`HTTP API (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;
    let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

    beforeAll(async () => {
      database = await factory.create();
      // The receiver fails its first answer: notifications must be retried.
      receiver = await startWebhookReceiver({ failFirst: 1 });
      service = await startTestService(database, {
        env: { WEBHOOK_URL: receiver.url, WEBHOOK_SECRET, WEBHOOK_MAX_ATTEMPTS: '5' },
      });
    });
    // Teardown waits for notifications still being retried (up to SHUTDOWN_TIMEOUT_MS) before the
    // database goes: more than the default 30 s hook time once on a busy CI machine.
    afterAll(async () => {
      await service?.close();
      await receiver?.close();
      await database?.drop();
    }, 90_000);

    /** An account whose platform grant exists in the simulator, stored as if connected earlier. */
    async function seededAccount(
      provider: ProviderName,
      externalAccountId: string,
      options: { expired?: boolean; issuedAgoMs?: number } = {},
    ) {
      const now = Date.now();
      const seeded = service.simulator.seedAccount(provider, {
        externalAccountId,
        displayName: `${externalAccountId} name`,
        issuedAt: now - (options.issuedAgoMs ?? 60_000),
        ...(options.expired ? { accessExpiresAt: now - 1000 } : {}),
      });
      return storeOf(service.oauth).accounts.insert(
        {
          ownerId: `owner-of-${externalAccountId}`,
          provider,
          externalAccountId,
          displayName: seeded.displayName,
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

    describe('authentication', () => {
      it('answers 401 with the error shape when the API key is missing', async () => {
        const response = await fetch(`${service.baseUrl}/v1/accounts`);
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toContain('Bearer');
        const body = await response.json();
        expect(body).toEqual({
          error: { code: 'unauthorized', message: expect.any(String), request_id: expect.any(String) },
        });
      });

      it('answers 401 to a wrong, malformed or revoked key', async () => {
        const wrongSecret = service.apiKey.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
        for (const key of [wrongSecret, 'not-a-key', `${service.apiKey}x`]) {
          const response = await service.api('GET', '/v1/accounts', undefined, {
            authorization: `Bearer ${key}`,
          });
          expect(response.status).toBe(401);
          expect(response.body.error.code).toBe('unauthorized');
        }
        const { key, summary } = await service.app.socialOAuth.apiKeys.create('short-lived');
        expect(
          (await service.api('GET', '/v1/accounts', undefined, { authorization: `Bearer ${key}` })).status,
        ).toBe(200);
        await service.app.socialOAuth.apiKeys.revoke(summary.id);
        expect(
          (await service.api('GET', '/v1/accounts', undefined, { authorization: `Bearer ${key}` })).status,
        ).toBe(401);
      });

      it('stores keys only as hashes', async () => {
        const rows = await storeOf(service.oauth).database.db.selectFrom('api_keys').selectAll().execute();
        expect(JSON.stringify(rows)).not.toContain(service.apiKey.split('_').pop());
      });

      it('leaves /health, /metrics and /openapi.json open', async () => {
        const health = await fetch(`${service.baseUrl}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toEqual({ status: 'ok', database: factory.kind });
        expect((await fetch(`${service.baseUrl}/openapi.json`)).status).toBe(200);
      });
    });

    describe('bad requests are 4xx, never 500', () => {
      it('rejects malformed JSON with invalid_json', async () => {
        const response = await service.api('POST', '/v1/connect-sessions', '{"provider": "tiktok",');
        expect(response.status).toBe(400);
        expect(response.body.error.code).toBe('invalid_json');
      });

      it('rejects a body over the limit with payload_too_large', async () => {
        const response = await service.api('POST', '/v1/connect-sessions', {
          provider: 'tiktok',
          owner_id: 'x'.repeat(20_000),
        });
        expect(response.status).toBe(413);
        expect(response.body.error.code).toBe('payload_too_large');
      });

      it('rejects an unsupported content type, schema violations and unknown routes', async () => {
        const xml = await service.api('POST', '/v1/connect-sessions', '<a/>', {
          'content-type': 'application/xml',
        });
        expect(xml.status).toBe(415);
        expect(xml.body.error.code).toBe('unsupported_media_type');
        const invalid = await service.api('POST', '/v1/connect-sessions', {
          provider: 'myspace',
          owner_id: 'o',
        });
        expect(invalid.status).toBe(400);
        expect(invalid.body.error.code).toBe('invalid_request');
        const extra = await service.api('POST', '/v1/connect-sessions', {
          provider: 'tiktok',
          owner_id: 'o',
          admin: true,
        });
        expect(extra.status).toBe(400);
        const missing = await service.api('GET', '/v1/nothing-here');
        expect(missing.status).toBe(404);
        expect(missing.body.error.code).toBe('not_found');
        const noAccount = await service.api('GET', '/v1/accounts/does-not-exist');
        expect(noAccount.status).toBe(404);
        expect(noAccount.body.error.code).toBe('account_not_found');
      });

      it('sets security headers and echoes a request id', async () => {
        const response = await fetch(`${service.baseUrl}/health`, {
          headers: { 'x-request-id': 'trace-123' },
        });
        expect(response.headers.get('x-request-id')).toBe('trace-123');
        expect(response.headers.get('x-content-type-options')).toBe('nosniff');
        expect(response.headers.get('referrer-policy')).toBe('no-referrer');
        expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
        expect(response.headers.get('cache-control')).toBe('no-store');
      });
    });

    describe('token endpoint', () => {
      it('refreshes an expired account exactly once for 50 concurrent callers, and all get the new token', async () => {
        const account = await seededAccount('tiktok', 'tiktok-concurrent', { expired: true });
        service.simulator.resetCounters();
        const responses = await Promise.all(
          Array.from({ length: 50 }, () => service.api('POST', `/v1/accounts/${account.id}/token`)),
        );
        expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
        const tokens = new Set(responses.map((r) => r.body.access_token));
        expect(tokens.size).toBe(1);
        expect(service.simulator.refreshCalls('tiktok', 'tiktok-concurrent')).toBe(1);
        expect(service.simulator.isAccessTokenValid('tiktok', [...tokens][0])).toBe(true);
        expect(responses.filter((r) => r.body.refreshed).length).toBeGreaterThanOrEqual(1);
      });

      it('returns the stored token without calling the platform while it is valid', async () => {
        const account = await seededAccount('youtube', 'UCvalid');
        service.simulator.resetCounters();
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(200);
        expect(response.body.access_token).toBe(account.accessToken);
        expect(service.simulator.totalRefreshCalls()).toBe(0);
      });

      it('refreshes early for a token that must be valid at a later time (valid_at)', async () => {
        // An hour-long Google token with 20 minutes left; the post goes out in 30.
        const account = await seededAccount('youtube', 'UCwarmup', { issuedAgoMs: 40 * 60_000 });
        const inHalfAnHour = new Date(Date.now() + 30 * 60_000).toISOString();
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`, {
          valid_at: inHalfAnHour,
        });
        expect(response.status).toBe(200);
        expect(response.body.refreshed).toBe(true);
      });

      it('does not refresh for a valid_at beyond what any fresh token would cover', async () => {
        const account = await seededAccount('youtube', 'UCtoofar');
        const inTwoHours = new Date(Date.now() + 2 * 3600_000).toISOString();
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`, {
          valid_at: inTwoHours,
        });
        expect(response.status).toBe(200);
        expect(response.body.refreshed).toBe(false);
        expect(service.simulator.refreshCalls('youtube', 'UCtoofar')).toBe(0);
      });

      it('says 409 account_needs_reauth when the grant is dead, and notifies WEBHOOK_URL with a signed event', async () => {
        const account = await seededAccount('youtube', 'UCdead', { expired: true });
        service.simulator.revokeGrant('youtube', 'UCdead');
        const response = await service.api('POST', `/v1/accounts/${account.id}/token`);
        expect(response.status).toBe(409);
        expect(response.body.error.code).toBe('account_needs_reauth');

        const delivery = await eventually(() => {
          const found = receiver.received.find((r) => JSON.parse(r.body).account.id === account.id);
          if (!found) throw new Error('not yet delivered');
          return found;
        });
        const body = JSON.parse(delivery.body);
        expect(body).toMatchObject({
          type: 'account.needs_reauth',
          account: { id: account.id, status: 'needs_reauth' },
        });
        const signature = String(delivery.headers['social-oauth-signature']);
        const timestamp = Number(/t=(\d+)/.exec(signature)![1]);
        expect(signature).toBe(StatusNotifier.sign(WEBHOOK_SECRET, timestamp, delivery.body));
        expect(delivery.body).not.toContain(account.accessToken!);
      });
    });

    describe('refresh, revoke and delete', () => {
      it('forces a refresh on POST /refresh', async () => {
        const account = await seededAccount('tiktok', 'tiktok-forced');
        const response = await service.api('POST', `/v1/accounts/${account.id}/refresh`);
        expect(response.status).toBe(200);
        expect(response.body.account.last_refresh_at).not.toBeNull();
        expect(service.simulator.refreshCalls('tiktok', 'tiktok-forced')).toBe(1);
      });

      it('revokes at TikTok and Google, deletes the tokens, and notifies', async () => {
        for (const [provider, id] of [
          ['tiktok', 'tiktok-revoke'],
          ['youtube', 'UCrevoke'],
        ] as const) {
          const account = await seededAccount(provider, id);
          const response = await service.api('POST', `/v1/accounts/${account.id}/revoke`);
          expect(response.status).toBe(200);
          expect(response.body.platform_revoked).toBe(true);
          expect(response.body.account.status).toBe('revoked');
          expect(response.body.account.has_refresh_token).toBe(false);
          expect(service.simulator.isAccessTokenValid(provider, account.accessToken!)).toBe(false);
          const stored = await storeOf(service.oauth).accounts.findById(account.id);
          expect(stored?.accessToken).toBeNull();
          const token = await service.api('POST', `/v1/accounts/${account.id}/token`);
          expect(token.status).toBe(409);
          expect(token.body.error.code).toBe('account_revoked');
          await eventually(() => {
            if (!receiver.received.some((r) => JSON.parse(r.body).account.id === account.id))
              throw new Error('waiting');
          });
        }
      });

      it('revokes an Instagram account locally: the platform has no revocation endpoint', async () => {
        const account = await seededAccount('instagram', '17841400000000321');
        const response = await service.api('POST', `/v1/accounts/${account.id}/revoke`);
        expect(response.status).toBe(200);
        expect(response.body.platform_revoked).toBeNull();
        expect(response.body.account.status).toBe('revoked');
      });

      it('deletes an account and keeps its history in the ledger', async () => {
        const account = await seededAccount('tiktok', 'tiktok-delete');
        const response = await service.api('DELETE', `/v1/accounts/${account.id}`);
        expect(response.status).toBe(204);
        expect((await service.api('GET', `/v1/accounts/${account.id}`)).status).toBe(404);
        const events = await service.api('GET', `/v1/events?account_id=${account.id}`);
        expect(events.body.events.map((e: { type: string }) => e.type)).toContain('deleted');
      });
    });

    describe('listing', () => {
      it("lists an owner's accounts and pages through them", async () => {
        for (const n of [1, 2, 3]) {
          const account = await seededAccount('tiktok', `tiktok-page-${n}`);
          await storeOf(service.oauth)
            .database.db.updateTable('social_accounts')
            .set({ owner_id: 'paged-owner' })
            .where('id', '=', account.id)
            .execute();
        }
        const first = await service.api('GET', '/v1/accounts?owner_id=paged-owner&limit=2');
        expect(first.body.accounts).toHaveLength(2);
        expect(first.body.next_cursor).not.toBeNull();
        const second = await service.api(
          'GET',
          `/v1/accounts?owner_id=paged-owner&limit=2&cursor=${first.body.next_cursor}`,
        );
        expect(second.body.accounts).toHaveLength(1);
        expect(second.body.next_cursor).toBeNull();
      });

      it('pages through the ledger', async () => {
        const first = await service.api('GET', '/v1/events?limit=1');
        expect(first.body.events).toHaveLength(1);
        const second = await service.api('GET', `/v1/events?limit=1&cursor=${first.body.next_cursor}`);
        expect(second.body.events[0].seq).toBeGreaterThan(first.body.events[0].seq);
      });
    });

    describe('operations', () => {
      it('exposes refreshes by provider and outcome, refresh latency and accounts by status', async () => {
        const text = await (await fetch(`${service.baseUrl}/metrics`)).text();
        expect(text).toMatch(/social_oauth_refreshes_total\{outcome="success",provider="tiktok"\} \d+/);
        expect(text).toMatch(/social_oauth_refresh_duration_seconds_count\{provider="tiktok"\} \d+/);
        expect(text).toMatch(/social_oauth_accounts\{provider="tiktok",status="active"\} \d+/);
        expect(text).toMatch(/social_oauth_refreshes_total\{outcome="needs_reauth",provider="youtube"\} 1/);
      });

      it('serves the OpenAPI document kept in docs/openapi.json', async () => {
        // biome-ignore lint/suspicious/noExplicitAny: a JSON document read back.
        const served: any = await (await fetch(`${service.baseUrl}/openapi.json`)).json();
        expect(served.openapi).toBe('3.1.0');
        expect(Object.keys(served.paths)).toEqual(
          expect.arrayContaining([
            '/v1/accounts',
            '/v1/accounts/{id}/token',
            '/v1/connect-sessions',
            '/webhooks/tiktok',
          ]),
        );
        const keptPath = new URL('../../docs/openapi.json', import.meta.url);
        // UPDATE_OPENAPI=1 npx vitest run test/http/api.test.ts rewrites the kept copy after an API change.
        if (process.env.UPDATE_OPENAPI === '1')
          writeFileSync(keptPath, `${JSON.stringify(served, null, 2)}\n`);
        const kept = JSON.parse(readFileSync(keptPath, 'utf8'));
        expect(kept).toEqual(served);
        expect(served.info.version).toBe(API_VERSION);
        expect(typeof buildOpenApiDocument).toBe('function');
      });
    });
  });
}
