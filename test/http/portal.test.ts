import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeOf } from '../../src/service/storeAccess.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { browse, connectThroughBrowser, startTestService, type TestService } from './harness.js';

for (const factory of DATABASES) {
  describe(`status page (${factory.kind})`, () => {
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

    /** Opens a portal link like a browser: returns the session cookie and the page's CSRF token. */
    async function openPortal(ownerId: string) {
      const created = await service.api('POST', '/v1/portal-sessions', { owner_id: ownerId });
      expect(created.status).toBe(201);
      const opened = await fetch(created.body.url, { redirect: 'manual' });
      expect(opened.status).toBe(303);
      expect(opened.headers.get('location')).toBe('/portal');
      const setCookie = opened.headers.get('set-cookie')!;
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/SameSite=Lax/);
      const cookie = setCookie.split(';')[0]!;
      const page = await fetch(`${service.baseUrl}/portal`, { headers: { cookie } });
      const html = await page.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      return { cookie, page, html, csrf: csrf! };
    }

    const post = (cookie: string, path: string, fields: Record<string, string>) =>
      fetch(`${service.baseUrl}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: service.baseUrl },
        body: new URLSearchParams(fields).toString(),
      });

    it("shows the owner's accounts, and only theirs, in a page that cannot be framed", async () => {
      await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'alice',
        consent: { externalAccountId: 'alice-tt', displayName: 'Alice on TikTok' },
      });
      await connectThroughBrowser(service, {
        provider: 'tiktok',
        ownerId: 'bob',
        consent: { externalAccountId: 'bob-tt', displayName: 'Bob on TikTok' },
      });
      const { page, html } = await openPortal('alice');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(page.headers.get('x-frame-options')).toBe('DENY');
      expect(html).toContain('Alice on TikTok');
      expect(html).not.toContain('Bob on TikTok');
    });

    it("refuses to act on another owner's account through a portal link", async () => {
      const bobId = (await storeOf(service.oauth).accounts.findByExternalId('tiktok', 'bob-tt'))!.id;
      const { cookie, csrf } = await openPortal('alice');
      for (const action of ['revoke', 'refresh']) {
        const response = await post(cookie, `/portal/accounts/${bobId}/${action}`, { csrf });
        expect(response.status).toBe(404);
      }
      expect((await storeOf(service.oauth).accounts.findById(bobId))?.status).toBe('active');
    });

    it("refuses a form without the page's CSRF token, or from another origin", async () => {
      const aliceId = (await storeOf(service.oauth).accounts.findByExternalId('tiktok', 'alice-tt'))!.id;
      const { cookie, csrf } = await openPortal('alice');
      expect((await post(cookie, `/portal/accounts/${aliceId}/revoke`, {})).status).toBe(403);
      expect((await post(cookie, `/portal/accounts/${aliceId}/revoke`, { csrf: `${csrf}x` })).status).toBe(
        403,
      );
      const crossSite = await fetch(`${service.baseUrl}/portal/accounts/${aliceId}/revoke`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie,
          'content-type': 'application/x-www-form-urlencoded',
          origin: 'https://evil.example',
        },
        body: new URLSearchParams({ csrf }).toString(),
      });
      expect(crossSite.status).toBe(403);
      expect((await storeOf(service.oauth).accounts.findById(aliceId))?.status).toBe('active');
    });

    it('answers an unknown or missing session with a page, not the accounts', async () => {
      const unknown = await fetch(`${service.baseUrl}/portal/s/not-a-real-token`, { redirect: 'manual' });
      expect(unknown.status).toBe(401);
      expect(await unknown.text()).toContain('expired');
      const noCookie = await fetch(`${service.baseUrl}/portal`);
      expect(noCookie.status).toBe(401);
    });

    it('connects, refreshes and revokes from the page', async () => {
      const { cookie, csrf } = await openPortal('carol');
      service.simulator.queueConsent('youtube', {
        externalAccountId: 'UCcarol',
        displayName: 'Carol Channel',
      });
      const started = await post(cookie, '/portal/connect', { csrf, provider: 'youtube' });
      expect(started.status).toBe(303);
      const landed = await browse(service, started.headers.get('location')!, { cookie });
      // The portal is on the service's own origin: the chain ends on the page, with a banner.
      expect(landed.status).toBe(200);
      expect(landed.text).toContain('YouTube account connected.');
      expect(landed.text).toContain('Carol Channel');

      const carolId = (await storeOf(service.oauth).accounts.findByExternalId('youtube', 'UCcarol'))!.id;
      const refreshed = await post(cookie, `/portal/accounts/${carolId}/refresh`, { csrf });
      expect(refreshed.headers.get('location')).toBe('/portal?notice=refreshed');
      const revoked = await post(cookie, `/portal/accounts/${carolId}/revoke`, { csrf });
      expect(revoked.headers.get('location')).toBe('/portal?notice=revoked');
      expect((await storeOf(service.oauth).accounts.findById(carolId))?.status).toBe('revoked');
    });
  });
}
