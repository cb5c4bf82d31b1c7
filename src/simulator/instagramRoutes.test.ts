import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../domain/clock.js';
import { instagramAppScopedId } from '../platforms/instagram/simulatorRoutes.js';
import { followAuthorizeRedirect } from './consentFlow.js';
import { type ProviderSimulator, startProviderSimulator } from './simulator.js';

/**
 * Each rule the simulator enforces for Instagram, proved by sending the wrong thing and reading
 * Instagram's refusal. docs/PLATFORMS.md ("## Instagram") names the documentation behind each.
 */

const CLIENT = { clientId: 'ig-strict-app', clientSecret: 'ig-strict-secret' };
const REDIRECT = 'https://app.example/oauth/instagram/callback';
const SCOPES = 'instagram_business_basic,instagram_business_content_publish';
const HOUR = 3_600_000;

describe('Instagram simulator rules', () => {
  let simulator: ProviderSimulator;
  const clock = new ManualClock();
  let base: string;

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: { instagram: CLIENT } });
    base = simulator.baseUrlFor('instagram');
  });
  afterAll(() => simulator.close());

  function authorizeUrl(overrides: Record<string, string | null> = {}): URL {
    const url = new URL(`${base}/oauth/authorize`);
    const params: Record<string, string | null> = {
      client_id: CLIENT.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: SCOPES,
      state: 'st',
      force_reauth: 'true',
      ...overrides,
    };
    for (const [key, value] of Object.entries(params)) if (value !== null) url.searchParams.set(key, value);
    return url;
  }

  async function authorizeAnswer(overrides: Record<string, string | null>) {
    const response = await fetch(authorizeUrl(overrides), { redirect: 'manual' });
    return { status: response.status, text: await response.text() };
  }

  async function codeFor(externalAccountId: string, overrides: Record<string, string | null> = {}) {
    simulator.queueConsent('instagram', { externalAccountId });
    const redirect = await followAuthorizeRedirect(authorizeUrl(overrides));
    return redirect.code!;
  }

  function exchange(fields: Record<string, string | null>) {
    const body = new URLSearchParams();
    const all: Record<string, string | null> = {
      client_id: CLIENT.clientId,
      client_secret: CLIENT.clientSecret,
      grant_type: 'authorization_code',
      redirect_uri: REDIRECT,
      ...fields,
    };
    for (const [key, value] of Object.entries(all)) if (value !== null) body.set(key, value);
    return fetch(`${base}/oauth/access_token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
  }

  /** The flat Basic Display era shape the code exchange refuses with, HTTP 400. */
  async function expectLegacyRefusal(response: Response, message: RegExp) {
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error_type: string; code: number; error_message: string };
    expect(body).toMatchObject({ error_type: 'OAuthException', code: 400 });
    expect(body.error_message).toMatch(message);
  }

  async function shortLivedToken(externalAccountId: string): Promise<string> {
    const response = await exchange({ code: await codeFor(externalAccountId) });
    const body = (await response.json()) as { data: Array<{ access_token: string }> };
    return body.data[0]!.access_token;
  }

  describe('authorize (Oauth Authorize reference; Business Login for Instagram, Step 1)', () => {
    it('refuses an unknown client_id', async () => {
      expect(await authorizeAnswer({ client_id: 'someone-else' })).toEqual({
        status: 400,
        text: 'Invalid platform app',
      });
    });

    it('refuses a response_type other than code', async () => {
      expect((await authorizeAnswer({ response_type: 'token' })).status).toBe(400);
    });

    it('refuses the business_* scope names retired on 27 January 2025', async () => {
      const answer = await authorizeAnswer({ scope: 'business_basic,business_content_publish' });
      expect(answer.status).toBe(400);
      expect(answer.text).toMatch(/Invalid Scopes: business_basic/);
    });

    it('refuses a request without instagram_business_basic, which is required', async () => {
      const answer = await authorizeAnswer({ scope: 'instagram_business_content_publish' });
      expect(answer).toMatchObject({ status: 400 });
      expect(answer.text).toMatch(/instagram_business_basic is required/);
    });

    it('refuses a request without scope', async () => {
      expect((await authorizeAnswer({ scope: null })).status).toBe(400);
    });

    it('accepts scopes separated by commas or by (URL-encoded) spaces', async () => {
      simulator.queueConsent('instagram', { externalAccountId: '17841400000002001' });
      const redirect = await followAuthorizeRedirect(
        authorizeUrl({ scope: 'instagram_business_basic instagram_business_content_publish' }),
      );
      expect(redirect.code).toBeTruthy();
    });

    it('ends the redirect with #_, which is not part of the code', async () => {
      simulator.queueConsent('instagram', { externalAccountId: '17841400000002002' });
      const redirect = await followAuthorizeRedirect(authorizeUrl());
      expect(redirect.location.hash).toBe('#_');
      expect(redirect.code).not.toMatch(/#/);
    });

    it('without force_reauth=true, binds the account the browser is logged in to, whoever meant to log in', async () => {
      await codeFor('17841400000002003');
      const silent = await codeFor('17841400000002004', { force_reauth: null });
      const forced = await codeFor('17841400000002005');
      const ids = [];
      for (const code of [silent, forced]) {
        const body = (await (await exchange({ code })).json()) as { data: Array<{ user_id: string }> };
        ids.push(String(body.data[0]!.user_id));
      }
      expect(ids).toEqual([
        instagramAppScopedId('17841400000002003'),
        instagramAppScopedId('17841400000002005'),
      ]);
    });
  });

  describe('code exchange (Oauth Access Token reference)', () => {
    it('answers the granted permissions, the app-scoped user_id as a bare number beyond 2^53, and the token', async () => {
      const response = await exchange({ code: await codeFor('17841400000002101') });
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain(`"user_id":${instagramAppScopedId('17841400000002101')}`);
      expect(JSON.parse(text)).toMatchObject({
        data: [{ access_token: expect.stringMatching(/^IGAA/), permissions: SCOPES }],
      });
    });

    it('answers flat when the setting says so (the reference shows it flat, Business Login wrapped)', async () => {
      simulator.settings.instagramTokenShape = 'flat';
      try {
        const body = await (await exchange({ code: await codeFor('17841400000002102') })).json();
        expect(body).toMatchObject({ access_token: expect.any(String), permissions: SCOPES });
      } finally {
        simulator.settings.instagramTokenShape = 'wrapped';
      }
    });

    it('partial consent: a declined permission is missing from permissions; the required one cannot be declined', async () => {
      const code = await codeFor('17841400000002103', {
        sim_decline: 'instagram_business_content_publish,instagram_business_basic',
      });
      const body = (await (await exchange({ code })).json()) as { data: Array<{ permissions: string }> };
      expect(body.data[0]!.permissions).toBe('instagram_business_basic');
    });

    it('refuses a code with the redirect #_ still on it', async () => {
      const code = await codeFor('17841400000002104');
      await expectLegacyRefusal(await exchange({ code: `${code}#_` }), /not found/);
    });

    it('refuses a code used twice', async () => {
      const code = await codeFor('17841400000002105');
      expect((await exchange({ code })).status).toBe(200);
      await expectLegacyRefusal(await exchange({ code }), /has been used/);
    });

    it('refuses a code past its lifetime', async () => {
      const code = await codeFor('17841400000002106');
      clock.advance(HOUR);
      await expectLegacyRefusal(await exchange({ code }), /expired/);
    });

    it('refuses a redirect_uri that differs from the authorize one, if only by a trailing slash', async () => {
      const code = await codeFor('17841400000002107');
      await expectLegacyRefusal(
        await exchange({ code, redirect_uri: `${REDIRECT}/` }),
        /redirect_uri is identical/,
      );
    });

    it('refuses a wrong client secret, a wrong grant_type and a missing field', async () => {
      await expectLegacyRefusal(
        await exchange({ code: await codeFor('17841400000002108'), client_secret: 'wrong' }),
        /client secret/,
      );
      await expectLegacyRefusal(
        await exchange({ code: await codeFor('17841400000002109'), grant_type: 'client_credentials' }),
        /grant_type/,
      );
      await expectLegacyRefusal(
        await exchange({ code: await codeFor('17841400000002110'), redirect_uri: null }),
        /redirect_uri/,
      );
    });
  });

  describe('long-lived tokens (Access Token and Refresh Access Token references)', () => {
    const graph = (path: string, params: Record<string, string>) => {
      const url = new URL(`${base}${path}`);
      for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
      return fetch(url);
    };
    /** The Graph API's envelope, with the HTTP status Meta sends it with. */
    async function expectGraphError(response: Response, status: number, code: number, subcode?: number) {
      expect(response.status).toBe(status);
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ type: 'OAuthException', code, fbtrace_id: expect.any(String) });
      if (subcode !== undefined) expect(body.error.error_subcode).toBe(subcode);
    }

    it('exchanges a short-lived token for a 60-day one, and refuses to exchange a long-lived one', async () => {
      const short = await shortLivedToken('17841400000002201');
      const answer = await graph('/access_token', {
        grant_type: 'ig_exchange_token',
        client_secret: CLIENT.clientSecret,
        access_token: short,
      });
      const long = (await answer.json()) as { access_token: string; expires_in: number; token_type: string };
      expect(long).toMatchObject({ token_type: 'bearer', expires_in: 60 * 86_400 });
      await expectGraphError(
        await graph('/access_token', {
          grant_type: 'ig_exchange_token',
          client_secret: CLIENT.clientSecret,
          access_token: long.access_token,
        }),
        400,
        100,
      );
    });

    it('refuses the exchange without grant_type=ig_exchange_token or with a wrong secret', async () => {
      const short = await shortLivedToken('17841400000002202');
      await expectGraphError(
        await graph('/access_token', { client_secret: CLIENT.clientSecret, access_token: short }),
        400,
        100,
      );
      await expectGraphError(
        await graph('/access_token', {
          grant_type: 'ig_exchange_token',
          client_secret: 'wrong',
          access_token: short,
        }),
        400,
        100,
      );
    });

    it('refuses to refresh a short-lived token: only long-lived ones refresh', async () => {
      const short = await shortLivedToken('17841400000002203');
      await expectGraphError(
        await graph('/refresh_access_token', { grant_type: 'ig_refresh_token', access_token: short }),
        400,
        100,
      );
    });

    it('refuses to refresh a long-lived token younger than 24 hours, which stays valid', async () => {
      const seeded = simulator.seedAccount('instagram', {
        externalAccountId: '17841400000002204',
        issuedAt: clock.now() - 23 * HOUR,
      });
      await expectGraphError(
        await graph('/refresh_access_token', {
          grant_type: 'ig_refresh_token',
          access_token: seeded.accessToken,
        }),
        400,
        100,
      );
      expect(simulator.isAccessTokenValid('instagram', seeded.accessToken)).toBe(true);
    });

    it('refuses an expired token with code 190/463 under HTTP 400, not 401', async () => {
      const seeded = simulator.seedAccount('instagram', {
        externalAccountId: '17841400000002205',
        issuedAt: clock.now() - 61 * 24 * HOUR,
        accessExpiresAt: clock.now() - HOUR,
      });
      await expectGraphError(
        await graph('/refresh_access_token', {
          grant_type: 'ig_refresh_token',
          access_token: seeded.accessToken,
        }),
        400,
        190,
        463,
      );
    });

    it('refuses a refresh without grant_type=ig_refresh_token', async () => {
      const seeded = simulator.seedAccount('instagram', {
        externalAccountId: '17841400000002206',
        issuedAt: clock.now() - 25 * HOUR,
      });
      await expectGraphError(
        await graph('/refresh_access_token', { access_token: seeded.accessToken }),
        400,
        100,
      );
    });
  });

  describe('/me (Me and User references)', () => {
    it('serves /me unversioned and under a Graph API version; id is app-scoped, user_id the professional account', async () => {
      const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000002301' });
      for (const path of ['/me', '/v26.0/me']) {
        const response = await fetch(`${base}${path}?fields=id,user_id,username`, {
          headers: { authorization: `Bearer ${seeded.accessToken}` },
        });
        expect(await response.json()).toMatchObject({
          id: instagramAppScopedId('17841400000002301'),
          user_id: '17841400000002301',
        });
      }
    });

    it('refuses an unknown token with code 190 under HTTP 400', async () => {
      const response = await fetch(`${base}/v26.0/me?fields=user_id`, {
        headers: { authorization: 'Bearer IGAAnot-a-token' },
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: 190, type: 'OAuthException' } });
    });

    it('reports X-App-Usage once the setting says the app has made enough calls', async () => {
      const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000002302' });
      const me = () =>
        fetch(`${base}/v26.0/me?fields=user_id`, {
          headers: { authorization: `Bearer ${seeded.accessToken}` },
        });
      expect((await me()).headers.get('x-app-usage')).toBeNull();
      simulator.settings.instagramAppUsagePercent = 88;
      try {
        expect(JSON.parse((await me()).headers.get('x-app-usage')!)).toEqual({
          call_count: 88,
          total_cputime: 88,
          total_time: 88,
        });
      } finally {
        simulator.settings.instagramAppUsagePercent = null;
      }
    });
  });
});
