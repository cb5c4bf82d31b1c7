import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../domain/clock.js';
import {
  type OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from '../../domain/errors.js';
import { followAuthorizeRedirect } from '../../simulator/consentFlow.js';
import { type ProviderSimulator, startProviderSimulator } from '../../simulator/simulator.js';
import { createS256CodeChallenge, generateCodeVerifier } from '../pkce.js';
import { classifyGoogleError, YouTubeProvider } from './oauthClient.js';

const CLIENT = { clientId: 'google-client.apps.googleusercontent.com', clientSecret: 'GOCSPX-secret' };
const REDIRECT_URI = 'https://app.example/oauth/youtube/callback';
const DAY = 86_400_000;
const UPLOAD = 'https://www.googleapis.com/auth/youtube.upload';

describe('YouTubeProvider against the simulator', () => {
  let simulator: ProviderSimulator;
  let provider: YouTubeProvider;
  const clock = new ManualClock();

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: { youtube: CLIENT } });
    provider = providerWith(CLIENT.clientSecret);
  });
  afterAll(() => simulator.close());

  function providerWith(clientSecret: string): YouTubeProvider {
    return new YouTubeProvider(
      { ...CLIENT, clientSecret, redirectUri: REDIRECT_URI, baseUrl: simulator.baseUrlFor('youtube') },
      { timeoutMs: 2000 },
    );
  }

  it('asks for offline access with prompt=consent, youtube.upload + youtube.readonly (not the full youtube scope) and an S256 challenge', () => {
    const url = new YouTubeProvider(
      { ...CLIENT, redirectUri: REDIRECT_URI, baseUrl: null },
      { timeoutMs: 1000 },
    ).createAuthorizationUrl({ state: 's-1', codeVerifier: 'v', scopes: provider.defaultScopes });
    expect(`${url.origin}${url.pathname}`).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: CLIENT.clientId,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: `${UPLOAD} https://www.googleapis.com/auth/youtube.readonly`,
      state: 's-1',
      access_type: 'offline',
      prompt: 'consent',
      include_granted_scopes: 'true',
      code_challenge: createS256CodeChallenge('v'),
      code_challenge_method: 'S256',
    });
  });

  it('connects: the code exchange carries a refresh token and the channel is the profile', async () => {
    simulator.queueConsent('youtube', {
      externalAccountId: 'UCconnect0000000000000001',
      displayName: 'My Channel',
    });
    const verifier = generateCodeVerifier();
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({
        state: 'st',
        codeVerifier: verifier,
        scopes: provider.defaultScopes,
      }),
    );
    const tokens = await provider.exchangeAuthorizationCode(redirect.code!, verifier);
    expect(tokens.refreshToken).toBeTruthy();
    expect(tokens).toMatchObject({ expiresInSeconds: 3599, externalAccountId: null });
    await expect(provider.fetchProfile(tokens.accessToken)).resolves.toEqual({
      externalAccountId: 'UCconnect0000000000000001',
      displayName: 'My Channel',
    });
  });

  it('refuses a code exchange with a different redirect_uri as our configuration', async () => {
    const verifier = generateCodeVerifier();
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({
        state: 'st',
        codeVerifier: verifier,
        scopes: provider.defaultScopes,
      }),
    );
    const other = new YouTubeProvider(
      { ...CLIENT, redirectUri: 'https://other.example/cb', baseUrl: simulator.baseUrlFor('youtube') },
      { timeoutMs: 2000 },
    );
    await expect(other.exchangeAuthorizationCode(redirect.code!, verifier)).rejects.toBeInstanceOf(
      ProviderConfigError,
    );
  });

  it('refreshes without a new refresh token: null means "keep yours", not "delete it"', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCrefresh' });
    const renewed = await provider.refreshAccessToken({
      accessToken: seeded.accessToken,
      refreshToken: seeded.refreshToken,
    });
    expect(renewed.refreshToken).toBeNull();
    expect(simulator.isAccessTokenValid('youtube', renewed.accessToken!)).toBe(true);
    // Refresh tokens do not rotate: the same one works again.
    await expect(
      provider.refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken }),
    ).resolves.toMatchObject({ refreshToken: null });
    expect(simulator.refreshCalls('youtube', 'UCrefresh')).toBe(2);
  });

  it('reads invalid_grant after the user revoked access as re-authorize', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCrevoked' });
    simulator.revokeGrant('youtube', 'UCrevoked');
    const error = await provider
      .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ReauthorizationRequired);
    expect(error).toMatchObject({
      providerErrorCode: 'invalid_grant',
      providerErrorDescription: 'Token has been expired or revoked.',
      httpStatus: 400,
    });
  });

  it('loses a refresh token unused for six months (invalid_grant)', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCidle' });
    clock.advance(183 * DAY);
    await expect(
      provider.refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken }),
    ).rejects.toBeInstanceOf(ReauthorizationRequired);
  });

  it('reads invalid_client (401) as our configuration', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCclient' });
    const error = await providerWith('wrong')
      .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderConfigError);
    expect(error).toMatchObject({ providerErrorCode: 'invalid_client', httpStatus: 401 });
  });

  it('revokes the whole grant from the refresh token; revoking again is refused (400 invalid_token)', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCrevoke-me' });
    await provider.revokeToken(seeded.refreshToken!);
    expect(simulator.isAccessTokenValid('youtube', seeded.accessToken)).toBe(false);
    expect(simulator.isRefreshTokenValid('youtube', seeded.refreshToken!)).toBe(false);
    await expect(provider.revokeToken(seeded.refreshToken!)).rejects.toMatchObject({
      providerErrorCode: 'invalid_token',
      httpStatus: 400,
    });
  });

  it('does not count a refused revoke of an expired access token as revoked: the refresh token lives on', async () => {
    const seeded = simulator.seedAccount('youtube', {
      externalAccountId: 'UCrevoke-expired',
      accessExpiresAt: clock.now() - 1000,
    });
    await expect(provider.revokeToken(seeded.accessToken)).rejects.toMatchObject({
      providerErrorCode: 'invalid_token',
    });
    expect(simulator.isRefreshTokenValid('youtube', seeded.refreshToken!)).toBe(true);
  });

  it('cannot read the channel with youtube.upload alone (insufficientPermissions → re-authorize)', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UCupload-only', scopes: [UPLOAD] });
    const error = await provider.fetchProfile(seeded.accessToken).catch((e) => e);
    expect(error).toBeInstanceOf(ReauthorizationRequired);
    expect(error).toMatchObject({ providerErrorCode: 'insufficientPermissions', httpStatus: 403 });
  });

  it('reads a 401 on channels.list as a dead access token', async () => {
    const error = await provider.fetchProfile('ya29.unknown').catch((e) => e);
    expect(error).toBeInstanceOf(ReauthorizationRequired);
    expect(error).toMatchObject({ providerErrorCode: 'authError', httpStatus: 401 });
  });

  it('turns a 429 with Retry-After into RateLimited with retryAfterMs', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UC429' });
    simulator.faults.set('youtube', { rateLimitNext: 1, retryAfterSeconds: 7 });
    try {
      const error = await provider
        .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
        .catch((e) => e);
      expect(error).toBeInstanceOf(RateLimited);
      expect(error.retryAfterMs).toBe(7_000);
    } finally {
      simulator.faults.clear();
    }
  });

  it('turns a 500 into TransientProviderError', async () => {
    const seeded = simulator.seedAccount('youtube', { externalAccountId: 'UC500' });
    simulator.faults.set('youtube', { failNext: 1, status: 500 });
    try {
      await expect(
        provider.refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken }),
      ).rejects.toBeInstanceOf(TransientProviderError);
    } finally {
      simulator.faults.clear();
    }
  });
});

describe('classifyGoogleError', () => {
  const none = new Headers();
  const now = Date.parse('2026-01-01T00:00:00Z');
  const apiError = (code: number, status: string, reason: string) => ({
    error: { code, message: reason, errors: [{ message: reason, domain: 'global', reason }], status },
  });
  const cases: Array<
    [rule: string, status: number, body: unknown, expected: new (...args: never[]) => OAuthProviderError]
  > = [
    [
      'invalid_grant (revoked or expired) means re-authorize',
      400,
      { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
      ReauthorizationRequired,
    ],
    [
      'invalid_grant "Bad Request" (used code) means re-authorize',
      400,
      { error: 'invalid_grant', error_description: 'Bad Request' },
      ReauthorizationRequired,
    ],
    [
      'invalid_client is our configuration',
      401,
      { error: 'invalid_client', error_description: 'The OAuth client was not found.' },
      ProviderConfigError,
    ],
    [
      'unauthorized_client is our configuration',
      401,
      { error: 'unauthorized_client', error_description: 'Unauthorized' },
      ProviderConfigError,
    ],
    [
      'redirect_uri_mismatch is our configuration',
      400,
      { error: 'redirect_uri_mismatch', error_description: 'Bad Request' },
      ProviderConfigError,
    ],
    [
      'a 401 authError from an API is a dead access token',
      401,
      apiError(401, 'UNAUTHENTICATED', 'authError'),
      ReauthorizationRequired,
    ],
    [
      'insufficientPermissions means re-authorize with the scope',
      403,
      apiError(403, 'PERMISSION_DENIED', 'insufficientPermissions'),
      ReauthorizationRequired,
    ],
    ['quotaExceeded is rate limited', 403, apiError(403, 'PERMISSION_DENIED', 'quotaExceeded'), RateLimited],
    [
      'rateLimitExceeded is rate limited',
      429,
      apiError(429, 'RESOURCE_EXHAUSTED', 'rateLimitExceeded'),
      RateLimited,
    ],
    ['a bare 429 is rate limited', 429, undefined, RateLimited],
    [
      'a 503 backendError is transient',
      503,
      apiError(503, 'UNAVAILABLE', 'backendError'),
      TransientProviderError,
    ],
    ['a 500 with an HTML page is transient', 500, undefined, TransientProviderError],
    [
      'an unknown 4xx is not trusted, not a dead grant',
      404,
      apiError(404, 'NOT_FOUND', 'notFound'),
      ProviderResponseInvalid,
    ],
  ];

  it.each(cases)('%s', (_rule, status, body, expected) => {
    expect(classifyGoogleError(status, body, none, now)).toBeInstanceOf(expected);
  });

  it('reads Retry-After in seconds', () => {
    const error = classifyGoogleError(429, undefined, new Headers({ 'retry-after': '120' }), now);
    expect((error as RateLimited).retryAfterMs).toBe(120_000);
  });

  // YouTube Data API, "Quota costs": "Daily quotas reset at midnight Pacific Time (PT)". Retrying
  // after a 6-hour backoff only spends more calls against a quota that is still spent.
  it.each([
    ['quotaExceeded', '2026-07-15T10:00:00Z', '2026-07-16T07:00:00Z'],
    ['quotaExceeded', '2026-12-02T12:00:00Z', '2026-12-03T08:00:00Z'],
    ['dailyLimitExceeded', '2026-12-03T07:59:00Z', '2026-12-03T08:00:00Z'],
  ])('waits for a YouTube %s until midnight Pacific (at %s: until %s)', (reason, at, resetAt) => {
    const nowMs = Date.parse(at);
    const error = classifyGoogleError(
      403,
      apiError(403, 'PERMISSION_DENIED', reason),
      none,
      nowMs,
    ) as RateLimited;
    expect(error).toBeInstanceOf(RateLimited);
    expect(error.retryAfterMs).toBe(Date.parse(resetAt) - nowMs);
  });
});
