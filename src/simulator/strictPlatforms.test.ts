import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../domain/clock.js';
import { type ProviderSimulator, startProviderSimulator } from './simulator.js';

/**
 * The simulator as a strict model of TikTok and Google: one test per documented rule, each sending
 * the wrong thing and expecting the platform's refusal (docs/PLATFORMS.md lists the sources).
 * Requests are written by hand, not by our clients, so that a client's misreading cannot agree
 * with the simulator's.
 */

const TIKTOK = { clientId: 'tt-key', clientSecret: 'tt-secret' };
const GOOGLE = { clientId: 'g-client.apps.googleusercontent.com', clientSecret: 'g-secret' };
const REDIRECT = 'https://app.example/oauth/callback';
const UPLOAD = 'https://www.googleapis.com/auth/youtube.upload';
const READONLY = 'https://www.googleapis.com/auth/youtube.readonly';
const DAY = 86_400_000;
const VERIFIER = 'a-verifier-of-more-than-forty-three-characters-0123456789';
const HEX_CHALLENGE = createHash('sha256').update(VERIFIER).digest('hex');
const BASE64URL_CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

describe('strict platform rules', () => {
  let simulator: ProviderSimulator;
  const clock = new ManualClock(Date.UTC(2026, 11, 2, 12));

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: { tiktok: TIKTOK, youtube: GOOGLE } });
  });
  afterAll(() => simulator.close());

  /** The authorize answer, unfollowed: an error page (no Location) or the redirect back. */
  async function authorize(
    provider: 'tiktok' | 'youtube',
    params: Record<string, string>,
  ): Promise<{ status: number; location: URL | null }> {
    const path = provider === 'tiktok' ? '/v2/auth/authorize/' : '/o/oauth2/v2/auth';
    const url = new URL(`${simulator.baseUrlFor(provider)}${path}`);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    const response = await fetch(url, { redirect: 'manual' });
    await response.arrayBuffer();
    const location = response.headers.get('location');
    return { status: response.status, location: location === null ? null : new URL(location) };
  }

  const tiktokAuthorize = (params: Record<string, string> = {}) =>
    authorize('tiktok', {
      client_key: TIKTOK.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'user.info.basic,video.upload,video.publish',
      state: 'st',
      code_challenge: HEX_CHALLENGE,
      code_challenge_method: 'S256',
      ...params,
    });

  const googleAuthorize = (params: Record<string, string> = {}) =>
    authorize('youtube', {
      client_id: GOOGLE.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: `${UPLOAD} ${READONLY}`,
      state: 'st',
      access_type: 'offline',
      prompt: 'consent',
      code_challenge: BASE64URL_CHALLENGE,
      code_challenge_method: 'S256',
      ...params,
    });

  async function tiktokToken(fields: Record<string, string>) {
    const response = await fetch(`${simulator.baseUrlFor('tiktok')}/v2/oauth/token/`, form(fields));
    // biome-ignore lint/suspicious/noExplicitAny: a platform's JSON answer.
    return { status: response.status, headers: response.headers, body: (await response.json()) as any };
  }

  async function googleToken(fields: Record<string, string>) {
    const response = await fetch(`${simulator.baseUrlFor('youtube')}/token`, form(fields));
    // biome-ignore lint/suspicious/noExplicitAny: a platform's JSON answer.
    return { status: response.status, body: (await response.json()) as any };
  }

  const tiktokExchange = (code: string, overrides: Record<string, string> = {}) =>
    tiktokToken({
      client_key: TIKTOK.clientId,
      client_secret: TIKTOK.clientSecret,
      code,
      grant_type: 'authorization_code',
      redirect_uri: REDIRECT,
      code_verifier: VERIFIER,
      ...overrides,
    });

  const googleExchange = (code: string, overrides: Record<string, string> = {}) =>
    googleToken({
      code,
      client_id: GOOGLE.clientId,
      client_secret: GOOGLE.clientSecret,
      redirect_uri: REDIRECT,
      grant_type: 'authorization_code',
      code_verifier: VERIFIER,
      ...overrides,
    });

  async function tiktokCode(params: Record<string, string> = {}): Promise<string> {
    const { location } = await tiktokAuthorize(params);
    return location!.searchParams.get('code')!;
  }

  async function googleCode(params: Record<string, string> = {}): Promise<string> {
    const { location } = await googleAuthorize(params);
    return location!.searchParams.get('code')!;
  }

  describe('TikTok', () => {
    it('refuses a base64url PKCE challenge before the consent screen: TikTok takes the hex digest', async () => {
      const refused = await tiktokAuthorize({ code_challenge: BASE64URL_CHALLENGE });
      expect(refused.status).toBe(400);
      expect(refused.location).toBeNull();
      const accepted = await tiktokAuthorize();
      expect(accepted.location?.searchParams.get('code')).toBeTruthy();
    });

    it('refuses a PKCE method other than S256', async () => {
      const refused = await tiktokAuthorize({ code_challenge_method: 'plain', code_challenge: VERIFIER });
      expect(refused.status).toBe(400);
      expect(refused.location).toBeNull();
    });

    it('accepts at the token endpoint only the verifier whose hex digest was the challenge', async () => {
      const wrong = await tiktokExchange(await tiktokCode(), { code_verifier: `${VERIFIER}-other` });
      expect(wrong.body).toMatchObject({ error: 'invalid_request', log_id: expect.any(String) });
      const right = await tiktokExchange(await tiktokCode());
      expect(right.body).toMatchObject({
        access_token: expect.stringMatching(/^act\./),
        token_type: 'Bearer',
      });
    });

    it('names the client client_key: client_id is no client, at authorize and at the token endpoint', async () => {
      const page = await tiktokAuthorize({ client_key: '', client_id: TIKTOK.clientId });
      expect(page.status).toBe(400);
      expect(page.location).toBeNull();
      const code = await tiktokCode();
      const refused = await tiktokToken({
        client_id: TIKTOK.clientId,
        client_secret: TIKTOK.clientSecret,
        code,
        grant_type: 'authorization_code',
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
      });
      expect(refused.body).toMatchObject({ error: 'invalid_client' });
    });

    it('separates scopes with commas: a space-joined list is invalid_scope', async () => {
      const answer = await tiktokAuthorize({ scope: 'user.info.basic video.upload' });
      expect(answer.location?.searchParams.get('error')).toBe('invalid_scope');
      expect(answer.location?.searchParams.get('code')).toBeNull();
    });

    it('reports a redirect_uri that differs from the authorization request as invalid_grant', async () => {
      const answer = await tiktokExchange(await tiktokCode(), { redirect_uri: `${REDIRECT}/other` });
      expect(answer.body).toMatchObject({ error: 'invalid_grant' });
    });

    it('takes a code once, and not after its lifetime', async () => {
      const code = await tiktokCode();
      expect((await tiktokExchange(code)).body).toHaveProperty('access_token');
      expect((await tiktokExchange(code)).body).toMatchObject({ error: 'invalid_grant' });
      const late = await tiktokCode();
      clock.advance(11 * 60_000);
      expect((await tiktokExchange(late)).body).toMatchObject({ error: 'invalid_grant' });
    });

    it('rotates refresh tokens: a spent one is invalid_grant', async () => {
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'tt-rotation' });
      const refresh = (token: string) =>
        tiktokToken({
          client_key: TIKTOK.clientId,
          client_secret: TIKTOK.clientSecret,
          grant_type: 'refresh_token',
          refresh_token: token,
        });
      const first = await refresh(seeded.refreshToken!);
      expect(first.body.refresh_token).not.toBe(seeded.refreshToken);
      expect((await refresh(seeded.refreshToken!)).body).toMatchObject({ error: 'invalid_grant' });
    });

    it('grants only the scopes the user agreed to, and says so in the token response', async () => {
      simulator.queueConsent('tiktok', {
        externalAccountId: 'tt-partial',
        withheldScopes: ['video.publish'],
      });
      const { location } = await tiktokAuthorize();
      expect(location?.searchParams.get('scopes')).toBe('user.info.basic,video.upload');
      const answer = await tiktokExchange(location!.searchParams.get('code')!);
      expect(answer.body.scope).toBe('user.info.basic,video.upload');
    });

    it('revokes only with a live access token: an expired one or a refresh token is refused and the grant lives on', async () => {
      const revokeAt = (token: string) =>
        fetch(
          `${simulator.baseUrlFor('tiktok')}/v2/oauth/revoke/`,
          form({ client_key: TIKTOK.clientId, client_secret: TIKTOK.clientSecret, token }),
        ).then(async (r) => ({ status: r.status, body: await r.json() }));
      const expired = simulator.seedAccount('tiktok', {
        externalAccountId: 'tt-revoke-expired',
        accessExpiresAt: clock.now() - 1000,
      });
      expect((await revokeAt(expired.accessToken)).body).toMatchObject({ error: 'invalid_grant' });
      expect((await revokeAt(expired.refreshToken!)).body).toMatchObject({ error: 'invalid_grant' });
      expect(simulator.hasLiveGrant('tiktok', 'tt-revoke-expired')).toBe(true);

      const live = simulator.seedAccount('tiktok', { externalAccountId: 'tt-revoke-live' });
      expect(await revokeAt(live.accessToken)).toEqual({ status: 200, body: {} });
      expect(simulator.hasLiveGrant('tiktok', 'tt-revoke-live')).toBe(false);
    });

    it('sends x-ratelimit-* where configured and answers 429 rate_limit_exceeded past the limit', async () => {
      simulator.settings.tiktokRateLimit = { limit: 2, windowSeconds: 60 };
      try {
        const call = () =>
          tiktokToken({
            client_key: TIKTOK.clientId,
            client_secret: TIKTOK.clientSecret,
            grant_type: 'refresh_token',
            refresh_token: 'rft.unknown',
          });
        const first = await call();
        expect(first.headers.get('x-ratelimit-remaining')).toBe('1');
        expect((await call()).headers.get('x-ratelimit-remaining')).toBe('0');
        const third = await call();
        expect(third.status).toBe(429);
        expect(third.body).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
      } finally {
        simulator.settings.tiktokRateLimit = null;
      }
    });
  });

  describe('Google', () => {
    it('separates scopes with spaces: a comma-joined list is an invalid_scope error page', async () => {
      const answer = await googleAuthorize({ scope: `${UPLOAD},${READONLY}` });
      expect(answer.status).toBe(400);
      expect(answer.location).toBeNull();
    });

    it('names the client client_id: client_key is no client at the token endpoint (401 invalid_client)', async () => {
      const code = await googleCode();
      const answer = await googleToken({
        code,
        client_key: GOOGLE.clientId,
        client_secret: GOOGLE.clientSecret,
        redirect_uri: REDIRECT,
        grant_type: 'authorization_code',
        code_verifier: VERIFIER,
      });
      expect(answer).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    });

    it('checks PKCE the RFC 7636 way: a hex challenge does not match the verifier (400 invalid_grant)', async () => {
      const answer = await googleExchange(await googleCode({ code_challenge: HEX_CHALLENGE }));
      expect(answer).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    });

    it('refuses a redirect_uri that differs from the authorization request (400 redirect_uri_mismatch)', async () => {
      const answer = await googleExchange(await googleCode(), { redirect_uri: `${REDIRECT}/other` });
      expect(answer).toMatchObject({ status: 400, body: { error: 'redirect_uri_mismatch' } });
    });

    it('takes a code once (400 invalid_grant the second time)', async () => {
      const code = await googleCode();
      expect((await googleExchange(code)).status).toBe(200);
      expect(await googleExchange(code)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    });

    it('grants only the ticked scopes, and the token response scope says which', async () => {
      simulator.queueConsent('youtube', { externalAccountId: 'UCpartial', withheldScopes: [READONLY] });
      const { location } = await googleAuthorize();
      const answer = await googleExchange(location!.searchParams.get('code')!);
      expect(answer.body.scope).toBe(UPLOAD);
    });

    it('lets the sandbox user untick a scope from the browser (sim_withhold)', async () => {
      const { location } = await googleAuthorize({
        sim_account: 'UCsandbox-partial',
        sim_withhold: READONLY,
      });
      const answer = await googleExchange(location!.searchParams.get('code')!);
      expect(answer.body.scope).toBe(UPLOAD);
    });

    it('revokes the grant with its refresh token; an expired access token is 400 invalid_token and ends nothing', async () => {
      const revokeAt = (token: string) =>
        fetch(`${simulator.baseUrlFor('youtube')}/revoke`, form({ token })).then(async (r) => ({
          status: r.status,
          body: await r.json(),
        }));
      const seeded = simulator.seedAccount('youtube', {
        externalAccountId: 'UCrevoke-strict',
        accessExpiresAt: clock.now() - 1000,
      });
      expect(await revokeAt(seeded.accessToken)).toMatchObject({
        status: 400,
        body: { error: 'invalid_token' },
      });
      expect(simulator.isRefreshTokenValid('youtube', seeded.refreshToken!)).toBe(true);
      expect((await revokeAt(seeded.refreshToken!)).status).toBe(200);
      expect(simulator.hasLiveGrant('youtube', 'UCrevoke-strict')).toBe(false);
      const refresh = await googleToken({
        grant_type: 'refresh_token',
        refresh_token: seeded.refreshToken!,
        client_id: GOOGLE.clientId,
        client_secret: GOOGLE.clientSecret,
      });
      expect(refresh).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    });

    it('runs a Testing-mode client: refresh tokens die after 7 days, refreshing does not extend them', async () => {
      simulator.settings.googlePublishingStatus = 'testing';
      try {
        const exchanged = await googleExchange(await googleCode());
        expect(exchanged.body.refresh_token_expires_in).toBe(7 * 86_400 - 1);
        const refresh = () =>
          googleToken({
            grant_type: 'refresh_token',
            refresh_token: exchanged.body.refresh_token,
            client_id: GOOGLE.clientId,
            client_secret: GOOGLE.clientSecret,
          });
        clock.advance(3 * DAY);
        const refreshed = await refresh();
        expect(refreshed.status).toBe(200);
        expect(refreshed.body.refresh_token_expires_in).toBe(4 * 86_400 - 1);
        clock.advance(4 * DAY);
        expect(await refresh()).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
      } finally {
        simulator.settings.googlePublishingStatus = 'production';
      }
    });
  });
});
