import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMetaRequest, signTikTokBody } from '../../src/http/webhookSignatures.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS } from '../support/simulator.js';
import { connectThroughBrowser, startTestService, type TestService } from './harness.js';

const form = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

for (const factory of DATABASES) {
  describe(`platform webhooks (${factory.kind})`, () => {
    let database: TestDatabase;
    let service: TestService;

    beforeAll(async () => {
      database = await factory.create();
      service = await startTestService(database);
    });
    afterAll(async () => {
      await service?.close();
      await database?.drop();
    });

    async function connected(provider: 'instagram' | 'tiktok', externalAccountId: string) {
      const landed = await connectThroughBrowser(service, {
        provider,
        ownerId: `owner-${externalAccountId}`,
        consent: { externalAccountId },
      });
      return landed.exit!.searchParams.get('account_id')!;
    }

    const statusOf = async (id: string) => (await service.api('GET', `/v1/accounts/${id}`)).body.status;
    const eventTypes = async (id: string) =>
      (await service.api('GET', `/v1/events?account_id=${id}`)).body.events.map(
        (e: { type: string }) => e.type,
      );

    it('revokes an Instagram account on a correctly signed Meta deauthorize callback', async () => {
      const id = await connected('instagram', '17841400000001001');
      const signed = signMetaRequest(
        {
          algorithm: 'HMAC-SHA256',
          user_id: '17841400000001001',
          issued_at: Math.floor(Date.now() / 1000) + 5,
        },
        SIM_CLIENTS.instagram.clientSecret,
      );
      const response = await fetch(
        `${service.baseUrl}/webhooks/instagram/deauthorize`,
        form({ signed_request: signed }),
      );
      expect(response.status).toBe(200);
      expect(await statusOf(id)).toBe('revoked');
      expect(await eventTypes(id)).toEqual(['connected', 'revoked']);
      expect((await storeOf(service.oauth).accounts.findById(id))?.accessToken).toBeNull();
    });

    it('answers 401 to a Meta callback signed with another secret, and changes nothing', async () => {
      const id = await connected('instagram', '17841400000001002');
      const forged = signMetaRequest(
        { algorithm: 'HMAC-SHA256', user_id: '17841400000001002' },
        'not-the-app-secret',
      );
      for (const path of ['/webhooks/instagram/deauthorize', '/webhooks/instagram/data-deletion']) {
        const response = await fetch(`${service.baseUrl}${path}`, form({ signed_request: forged }));
        expect(response.status).toBe(401);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_signature');
      }
      const garbage = await fetch(
        `${service.baseUrl}/webhooks/instagram/deauthorize`,
        form({ signed_request: 'abc.def' }),
      );
      expect(garbage.status).toBe(401);
      expect(await statusOf(id)).toBe('active');
    });

    it('deletes the tokens on a Meta data-deletion request and answers {url, confirmation_code}', async () => {
      const id = await connected('instagram', '17841400000001003');
      const signed = signMetaRequest(
        {
          algorithm: 'HMAC-SHA256',
          user_id: '17841400000001003',
          issued_at: Math.floor(Date.now() / 1000) + 5,
        },
        SIM_CLIENTS.instagram.clientSecret,
      );
      const response = await fetch(
        `${service.baseUrl}/webhooks/instagram/data-deletion`,
        form({ signed_request: signed }),
      );
      expect(response.status).toBe(200);
      const body = (await response.json()) as { url: string; confirmation_code: string };
      expect(body.confirmation_code).toMatch(/^[A-Za-z0-9_-]{8,}$/);
      expect(body.url).toBe(`${service.baseUrl}/webhooks/instagram/data-deletion/${body.confirmation_code}`);
      expect((await fetch(body.url)).status).toBe(200);
      expect(await statusOf(id)).toBe('revoked');
    });

    it('revokes a TikTok account on a signed authorization.removed, once, however often it arrives', async () => {
      const id = await connected('tiktok', 'tiktok-removed');
      const body = JSON.stringify({
        client_key: SIM_CLIENTS.tiktok.clientId,
        event: 'authorization.removed',
        create_time: Math.floor(Date.now() / 1000) + 5,
        user_openid: 'tiktok-removed',
        content: JSON.stringify({ reason: 1 }),
      });
      const signature = signTikTokBody(body, SIM_CLIENTS.tiktok.clientSecret, Math.floor(Date.now() / 1000));
      for (let delivery = 0; delivery < 2; delivery++) {
        const response = await fetch(`${service.baseUrl}/webhooks/tiktok`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'tiktok-signature': signature },
          body,
        });
        expect(response.status).toBe(200);
      }
      expect(await statusOf(id)).toBe('revoked');
      expect(await eventTypes(id)).toEqual(['connected', 'revoked']);
    });

    it('answers 401 to a TikTok event with a wrong or missing signature, and changes nothing', async () => {
      const id = await connected('tiktok', 'tiktok-forged');
      const body = JSON.stringify({
        client_key: SIM_CLIENTS.tiktok.clientId,
        event: 'authorization.removed',
        create_time: Math.floor(Date.now() / 1000) + 5,
        user_openid: 'tiktok-forged',
      });
      const now = Math.floor(Date.now() / 1000);
      for (const signature of [signTikTokBody(body, 'wrong-secret', now), undefined, `t=${now},s=`]) {
        const response = await fetch(`${service.baseUrl}/webhooks/tiktok`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(signature ? { 'tiktok-signature': signature } : {}),
          },
          body,
        });
        expect(response.status).toBe(401);
      }
      // Signed correctly, but for another body: the signature covers the exact bytes.
      const tampered = await fetch(`${service.baseUrl}/webhooks/tiktok`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'tiktok-signature': signTikTokBody(body, SIM_CLIENTS.tiktok.clientSecret, now),
        },
        body: body.replace('tiktok-forged', 'tiktok-forged '),
      });
      expect(tampered.status).toBe(401);
      expect(await statusOf(id)).toBe('active');
    });

    it('ignores a removal older than the current grant: a late or replayed event cannot undo a reconnect', async () => {
      const id = await connected('tiktok', 'tiktok-late');
      const body = JSON.stringify({
        client_key: SIM_CLIENTS.tiktok.clientId,
        event: 'authorization.removed',
        create_time: Math.floor(Date.now() / 1000) - 3600,
        user_openid: 'tiktok-late',
      });
      const now = Math.floor(Date.now() / 1000);
      const response = await fetch(`${service.baseUrl}/webhooks/tiktok`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'tiktok-signature': signTikTokBody(body, SIM_CLIENTS.tiktok.clientSecret, now),
        },
        body,
      });
      expect(response.status).toBe(200);
      expect(await statusOf(id)).toBe('active');
    });

    it('bug: after more than 500 reconnects the replay guard read the 500th, and an event older than the current grant revoked it', async () => {
      const now = Date.now();
      // Connected three days ago.
      const seeded = service.simulator.seedAccount('tiktok', { externalAccountId: 'tiktok-many-reconnects' });
      const { id } = await storeOf(service.oauth).accounts.insert(
        {
          ownerId: 'owner-many-reconnects',
          provider: 'tiktok',
          externalAccountId: 'tiktok-many-reconnects',
          displayName: null,
          accessToken: seeded.accessToken,
          refreshToken: seeded.refreshToken,
          expiresAt: seeded.accessExpiresAt,
          refreshTokenExpiresAt: seeded.refreshExpiresAt,
          scopes: seeded.scopes,
          tokenIssuedAt: now - 60_000,
        },
        now - 3 * 86_400_000,
      );
      // 500 reconnects two hours ago, then the one that began the current grant, a minute ago.
      for (let i = 0; i < 500; i++) {
        await storeOf(service.oauth).ledger.append(
          { accountId: id, type: 'reconnected' },
          now - 7_200_000 + i,
        );
      }
      await storeOf(service.oauth).ledger.append({ accountId: id, type: 'reconnected' }, now - 60_000);
      // A removal from an hour ago: after the 500th reconnect, before the current grant.
      const body = JSON.stringify({
        client_key: SIM_CLIENTS.tiktok.clientId,
        event: 'authorization.removed',
        create_time: Math.floor((now - 3_600_000) / 1000),
        user_openid: 'tiktok-many-reconnects',
      });
      const response = await fetch(`${service.baseUrl}/webhooks/tiktok`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'tiktok-signature': signTikTokBody(body, SIM_CLIENTS.tiktok.clientSecret, Math.floor(now / 1000)),
        },
        body,
      });
      expect(response.status).toBe(200);
      expect(await statusOf(id)).toBe('active');
    });
  });
}
