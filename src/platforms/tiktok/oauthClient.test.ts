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
import { createS256HexCodeChallenge, generateCodeVerifier } from '../pkce.js';
import { classifyTikTokError, TikTokProvider } from './oauthClient.js';

const CLIENT = { clientId: 'tt-client-key', clientSecret: 'tt-client-secret' };
const REDIRECT_URI = 'https://app.example/oauth/tiktok/callback';
const DAY = 86_400_000;

describe('TikTokProvider against the simulator', () => {
  let simulator: ProviderSimulator;
  let provider: TikTokProvider;
  const clock = new ManualClock();

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: { tiktok: CLIENT } });
    provider = providerWith(CLIENT.clientSecret);
  });
  afterAll(() => simulator.close());

  function providerWith(clientSecret: string, timeoutMs = 2000): TikTokProvider {
    return new TikTokProvider(
      { ...CLIENT, clientSecret, redirectUri: REDIRECT_URI, baseUrl: simulator.baseUrlFor('tiktok') },
      { timeoutMs },
    );
  }

  it('builds the authorize URL with client_key (not client_id), comma-joined scopes and a hex S256 challenge', () => {
    const url = new TikTokProvider(
      { ...CLIENT, redirectUri: REDIRECT_URI, baseUrl: null },
      { timeoutMs: 1000 },
    ).createAuthorizationUrl({
      state: 's-1',
      codeVerifier: 'verifier-123',
      scopes: ['user.info.basic', 'video.upload'],
    });
    expect(`${url.origin}${url.pathname}`).toBe('https://www.tiktok.com/v2/auth/authorize/');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_key: CLIENT.clientId,
      scope: 'user.info.basic,video.upload',
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      state: 's-1',
      // TikTok's S256 is the lowercase hex digest (Login Kit for Desktop), not base64url.
      code_challenge: createS256HexCodeChallenge('verifier-123'),
      code_challenge_method: 'S256',
    });
  });

  it('keeps the real path under a base URL', () => {
    const url = provider.createAuthorizationUrl({
      state: 's',
      codeVerifier: null,
      scopes: ['user.info.basic'],
    });
    expect(url.toString().startsWith(`${simulator.baseUrlFor('tiktok')}/v2/auth/authorize/?`)).toBe(true);
  });

  it('connects: consent, code exchange with PKCE, then the profile names the same open_id', async () => {
    simulator.queueConsent('tiktok', { externalAccountId: 'open-connect', displayName: 'Connect Test' });
    const verifier = generateCodeVerifier();
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({
        state: 'st-42',
        codeVerifier: verifier,
        scopes: provider.defaultScopes,
      }),
    );
    expect(redirect.state).toBe('st-42');

    const tokens = await provider.exchangeAuthorizationCode(redirect.code!, verifier);
    expect(tokens).toMatchObject({
      externalAccountId: 'open-connect',
      expiresInSeconds: 7200,
      refreshTokenExpiresInSeconds: 180 * 86_400,
      scopes: ['user.info.basic', 'video.upload', 'video.publish'],
    });
    expect(tokens.refreshToken).toBeTruthy();
    await expect(provider.fetchProfile(tokens.accessToken)).resolves.toEqual({
      externalAccountId: 'open-connect',
      displayName: 'Connect Test',
    });
  });

  it('reads a PKCE mismatch (TikTok says invalid_request) as our bug, not a dead grant', async () => {
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({
        state: 's',
        codeVerifier: generateCodeVerifier(),
        scopes: ['user.info.basic'],
      }),
    );
    const error = await provider
      .exchangeAuthorizationCode(redirect.code!, generateCodeVerifier())
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderConfigError);
    expect(error).toMatchObject({
      providerErrorCode: 'invalid_request',
      providerErrorDescription: 'Code verifier or code challenge is invalid.',
    });
  });

  it('refuses an authorization code used twice', async () => {
    const verifier = generateCodeVerifier();
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({ state: 's', codeVerifier: verifier, scopes: ['user.info.basic'] }),
    );
    await provider.exchangeAuthorizationCode(redirect.code!, verifier);
    await expect(provider.exchangeAuthorizationCode(redirect.code!, verifier)).rejects.toBeInstanceOf(
      ReauthorizationRequired,
    );
  });

  it('rotates: a refresh returns a new refresh token and the one used is rejected afterwards', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-rotate' });
    const first = await provider.refreshAccessToken({
      accessToken: seeded.accessToken,
      refreshToken: seeded.refreshToken,
    });
    expect(first.refreshToken).not.toBe(seeded.refreshToken);
    expect(first.accessToken).not.toBe(seeded.accessToken);
    expect(simulator.isAccessTokenValid('tiktok', first.accessToken!)).toBe(true);
    // The access token from before stays valid until it expires.
    expect(simulator.isAccessTokenValid('tiktok', seeded.accessToken)).toBe(true);

    const reuse = await provider
      .refreshAccessToken({ accessToken: seeded.accessToken, refreshToken: seeded.refreshToken })
      .catch((e) => e);
    expect(reuse).toBeInstanceOf(ReauthorizationRequired);
    expect(reuse.providerErrorCode).toBe('invalid_grant');

    const second = await provider.refreshAccessToken({
      accessToken: first.accessToken,
      refreshToken: first.refreshToken,
    });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(simulator.refreshCalls('tiktok', 'open-rotate')).toBe(3);
  });

  it('rejects a refresh token past its refresh_expires_in as invalid_grant', async () => {
    const seeded = simulator.seedAccount('tiktok', {
      externalAccountId: 'open-expired',
      refreshExpiresAt: clock.now() + DAY,
    });
    clock.advance(DAY + 1);
    await expect(
      provider.refreshAccessToken({ accessToken: seeded.accessToken, refreshToken: seeded.refreshToken }),
    ).rejects.toBeInstanceOf(ReauthorizationRequired);
  });

  it('reads invalid_client sent with HTTP 200 as our configuration, not as success or a dead grant', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-config' });
    const error = await providerWith('wrong-secret')
      .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderConfigError);
    expect(error).toMatchObject({ providerErrorCode: 'invalid_client', httpStatus: 200 });
    // The refresh token was not spent by a request the platform refused.
    expect(simulator.isRefreshTokenValid('tiktok', seeded.refreshToken!)).toBe(true);
  });

  it('revokes: every token of the authorization stops working', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-revoke' });
    await provider.revokeToken(seeded.accessToken);
    expect(simulator.isAccessTokenValid('tiktok', seeded.accessToken)).toBe(false);
    expect(simulator.isRefreshTokenValid('tiktok', seeded.refreshToken!)).toBe(false);
    // Revoking again is refused: the platform confirms nothing, so nothing is claimed.
    await expect(provider.revokeToken(seeded.accessToken)).rejects.toBeInstanceOf(ReauthorizationRequired);
  });

  it('does not count a refused revoke of an expired access token as revoked: the grant lives on', async () => {
    const seeded = simulator.seedAccount('tiktok', {
      externalAccountId: 'open-revoke-expired',
      accessExpiresAt: clock.now() - 1000,
    });
    await expect(provider.revokeToken(seeded.accessToken)).rejects.toMatchObject({
      providerErrorCode: 'invalid_grant',
    });
    expect(simulator.hasLiveGrant('tiktok', 'open-revoke-expired')).toBe(true);
  });

  it('reads a 401 access_token_invalid on the profile as a dead access token, keeping the code', async () => {
    const error = await provider.fetchProfile('act.not-a-token').catch((e) => e);
    expect(error).toBeInstanceOf(ReauthorizationRequired);
    expect(error).toMatchObject({ providerErrorCode: 'access_token_invalid', httpStatus: 401 });
    expect(String(error.message)).not.toContain('act.not-a-token');
  });

  it('turns a 429 with Retry-After into RateLimited with retryAfterMs', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-429' });
    simulator.faults.set('tiktok', { rateLimitNext: 1, retryAfterSeconds: 30 });
    try {
      const error = await provider
        .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
        .catch((e) => e);
      expect(error).toBeInstanceOf(RateLimited);
      expect(error.retryAfterMs).toBe(30_000);
    } finally {
      simulator.faults.clear();
    }
  });

  it('turns a platform that does not answer within the timeout into TransientProviderError', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-hang' });
    simulator.faults.set('tiktok', { hangNext: 1, hangMs: 5_000 });
    try {
      const error = await providerWith(CLIENT.clientSecret, 200)
        .refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken })
        .catch((e) => e);
      expect(error).toBeInstanceOf(TransientProviderError);
      expect(error.providerErrorCode).toBe('timeout');
      expect(String(error.message)).not.toContain(seeded.refreshToken);
    } finally {
      simulator.faults.clear();
    }
  });

  it('turns a 503 into TransientProviderError', async () => {
    const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'open-503' });
    simulator.faults.set('tiktok', { failNext: 1, status: 503 });
    try {
      await expect(
        provider.refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken }),
      ).rejects.toBeInstanceOf(TransientProviderError);
    } finally {
      simulator.faults.clear();
    }
  });
});

describe('classifyTikTokError', () => {
  const none = new Headers();
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cases: Array<
    [rule: string, status: number, body: unknown, expected: new (...args: never[]) => OAuthProviderError]
  > = [
    [
      'invalid_grant means re-authorize, whatever the status (here 200)',
      200,
      { error: 'invalid_grant', error_description: 'Refresh token is invalid or expired.', log_id: '2026A' },
      ReauthorizationRequired,
    ],
    [
      'invalid_grant with 400 means re-authorize',
      400,
      { error: 'invalid_grant', error_description: 'Authorization code is expired.', log_id: '2026B' },
      ReauthorizationRequired,
    ],
    [
      'invalid_client is our configuration',
      401,
      { error: 'invalid_client', error_description: 'Client key or secret is incorrect.', log_id: 'x' },
      ProviderConfigError,
    ],
    [
      'unauthorized_client is our configuration',
      200,
      { error: 'unauthorized_client', log_id: 'x' },
      ProviderConfigError,
    ],
    [
      'scope_not_authorized from an API means re-authorize',
      401,
      {
        data: {},
        error: {
          code: 'scope_not_authorized',
          message: 'The user did not authorize the scope.',
          log_id: 'x',
        },
      },
      ReauthorizationRequired,
    ],
    [
      'access_token_invalid from an API is a dead access token',
      401,
      {
        data: {},
        error: { code: 'access_token_invalid', message: 'The access token is invalid.', log_id: 'x' },
      },
      ReauthorizationRequired,
    ],
    [
      'rate_limit_exceeded is rate limited',
      429,
      { data: {}, error: { code: 'rate_limit_exceeded', message: 'Too many requests.', log_id: 'x' } },
      RateLimited,
    ],
    ['a bare 429 is rate limited', 429, undefined, RateLimited],
    // OAuth Error Handling: invalid_grant covers a grant that "does not match the redirection URI
    // used in the authorization request": re-authorize, not our configuration.
    [
      'a redirect_uri mismatch at code exchange is invalid_grant: re-authorize',
      200,
      {
        error: 'invalid_grant',
        error_description: 'redirect_uri does not match the authorization request.',
        log_id: '20261202A',
      },
      ReauthorizationRequired,
    ],
    [
      'access_denied (the user or server denied the request) means re-authorize',
      200,
      { error: 'access_denied', error_description: 'The user denied the request', log_id: 'x' },
      ReauthorizationRequired,
    ],
    [
      'unsupported_response_type is our configuration',
      200,
      { error: 'unsupported_response_type', error_description: 'response_type must be code', log_id: 'x' },
      ProviderConfigError,
    ],
    [
      'invalid_scope is our configuration',
      200,
      { error: 'invalid_scope', error_description: 'The requested scope is invalid.', log_id: 'x' },
      ProviderConfigError,
    ],
    [
      'a PKCE mismatch (invalid_request) is our bug',
      200,
      {
        error: 'invalid_request',
        error_description: 'Code verifier or code challenge is invalid.',
        log_id: 'x',
      },
      ProviderConfigError,
    ],
    [
      'scope_permission_missed ("some fields need additional scopes") means re-authorize',
      401,
      {
        data: {},
        error: {
          code: 'scope_permission_missed',
          message: 'Access token is invalid, some fields need additional scopes.',
          log_id: 'x',
        },
      },
      ReauthorizationRequired,
    ],
    [
      'invalid_params (400) is our request',
      400,
      { data: {}, error: { code: 'invalid_params', message: 'One or more fields is invalid.', log_id: 'x' } },
      ProviderConfigError,
    ],
    [
      'internal_error (500) is transient',
      500,
      { data: {}, error: { code: 'internal_error', message: 'Internal error.', log_id: 'x' } },
      TransientProviderError,
    ],
    ['a 5xx without a body is transient', 502, undefined, TransientProviderError],
    [
      'server_error is transient',
      500,
      { error: 'server_error', error_description: 'Internal' },
      TransientProviderError,
    ],
    [
      'an unknown 4xx answer is not trusted, not a dead grant',
      418,
      { unexpected: true },
      ProviderResponseInvalid,
    ],
  ];

  it.each(cases)('%s', (_rule, status, body, expected) => {
    expect(classifyTikTokError(status, body, none, now)).toBeInstanceOf(expected);
  });

  it('keeps the platform code, description and status on the error', () => {
    const error = classifyTikTokError(
      200,
      { error: 'invalid_grant', error_description: 'Refresh token is invalid or expired.', log_id: 'L' },
      none,
      now,
    );
    expect(error).toMatchObject({
      providerErrorCode: 'invalid_grant',
      providerErrorDescription: 'Refresh token is invalid or expired.',
      httpStatus: 200,
      provider: 'tiktok',
    });
  });

  it('reads Retry-After given as an HTTP date', () => {
    const error = classifyTikTokError(
      429,
      undefined,
      new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:01:00 GMT' }),
      now,
    );
    expect(error).toBeInstanceOf(RateLimited);
    expect((error as RateLimited).retryAfterMs).toBe(60_000);
  });
});
