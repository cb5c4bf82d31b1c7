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
import type { ProviderName } from '../../domain/providerName.js';
import { followAuthorizeRedirect } from '../../simulator/consentFlow.js';
import { type ProviderSimulator, startProviderSimulator } from '../../simulator/simulator.js';
import type { AnswerHeaders } from '../providerHttp.js';
import { readInstagramUsageHint } from '../rateLimitHints.js';
import {
  classifyInstagramError,
  INSTAGRAM_DEFAULT_GRAPH_VERSION,
  InstagramProvider,
  instagramProfileUrl,
  parseInstagramJson,
} from './oauthClient.js';
import { instagramAppScopedId } from './simulatorRoutes.js';

const CLIENT = { clientId: 'ig-app-id', clientSecret: 'ig-app-secret' };
const REDIRECT_URI = 'https://app.example/oauth/instagram/callback';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('InstagramProvider against the simulator', () => {
  let simulator: ProviderSimulator;
  let provider: InstagramProvider;
  const clock = new ManualClock();

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: { instagram: CLIENT } });
    provider = providerWith(CLIENT.clientSecret);
  });
  afterAll(() => simulator.close());

  function providerWith(
    clientSecret: string,
    observeAnswer?: (provider: ProviderName, headers: AnswerHeaders) => void,
  ): InstagramProvider {
    return new InstagramProvider(
      { ...CLIENT, clientSecret, redirectUri: REDIRECT_URI, baseUrl: simulator.baseUrlFor('instagram') },
      { timeoutMs: 2000, observeAnswer },
    );
  }

  async function connect(externalAccountId: string) {
    simulator.queueConsent('instagram', { externalAccountId, displayName: `user_${externalAccountId}` });
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({ state: 'st', codeVerifier: null, scopes: provider.defaultScopes }),
    );
    return { redirect, tokens: await provider.exchangeAuthorizationCode(redirect.code!, null) };
  }

  it('builds the authorize URL with client_id, comma-joined scopes, force_reauth and no PKCE', () => {
    const url = new InstagramProvider(
      { ...CLIENT, redirectUri: REDIRECT_URI, baseUrl: null },
      { timeoutMs: 1000 },
    ).createAuthorizationUrl({
      state: 's-1',
      codeVerifier: 'ignored',
      scopes: ['instagram_business_basic', 'x'],
    });
    expect(`${url.origin}${url.pathname}`).toBe('https://www.instagram.com/oauth/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: CLIENT.clientId,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'instagram_business_basic,x',
      state: 's-1',
      force_reauth: 'true',
    });
  });

  it('connects: the code buys a short-lived token, which is swapped at once for a 60-day one', async () => {
    const { redirect, tokens } = await connect('17841405822304914');
    expect(redirect.location.hash).toBe('#_');
    expect(tokens).toMatchObject({
      refreshToken: null,
      expiresInSeconds: 60 * 86_400,
      scopes: ['instagram_business_basic', 'instagram_business_content_publish'],
    });
    expect(simulator.isAccessTokenValid('instagram', tokens.accessToken)).toBe(true);
  });

  it('keeps a 17-digit user_id exact (JSON.parse would round it past 2^53)', async () => {
    const { tokens } = await connect('17841405822304915');
    expect(tokens.externalAccountId).toBe(instagramAppScopedId('17841405822304915'));
    await expect(provider.fetchProfile(tokens.accessToken)).resolves.toEqual({
      externalAccountId: '17841405822304915',
      displayName: 'user_17841405822304915',
    });
  });

  it('accepts the code exchange answer flat as well as wrapped in data: [...]', async () => {
    simulator.settings.instagramTokenShape = 'flat';
    try {
      const { tokens } = await connect('17841400000000777');
      expect(tokens.externalAccountId).toBe(instagramAppScopedId('17841400000000777'));
    } finally {
      simulator.settings.instagramTokenShape = 'wrapped';
    }
  });

  it('strips the trailing #_ a user copies along with the code', async () => {
    simulator.queueConsent('instagram', { externalAccountId: '17841400000000888' });
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({ state: 'st', codeVerifier: null, scopes: provider.defaultScopes }),
    );
    const tokens = await provider.exchangeAuthorizationCode(`${redirect.code}#_`, null);
    expect(tokens.externalAccountId).toBe(instagramAppScopedId('17841400000000888'));
  });

  it('bug: a reconnect bound the Instagram account the browser was logged in to, not the one the user meant', async () => {
    // The browser logs in as one account, then the user reconnects meaning another: only
    // force_reauth=true shows the login screen where they can switch.
    const first = await connect('17841400000000901');
    await expect(provider.fetchProfile(first.tokens.accessToken)).resolves.toMatchObject({
      externalAccountId: '17841400000000901',
    });
    const second = await connect('17841400000000902');
    await expect(provider.fetchProfile(second.tokens.accessToken)).resolves.toMatchObject({
      externalAccountId: '17841400000000902',
    });
  });

  it('reports the app-scoped user_id of the code exchange, which is not the /me user_id accounts are keyed on', async () => {
    const { tokens } = await connect('17841400000000903');
    const profile = await provider.fetchProfile(tokens.accessToken);
    expect(profile.externalAccountId).toBe('17841400000000903');
    expect(tokens.externalAccountId).toBe(instagramAppScopedId('17841400000000903'));
    expect(tokens.externalAccountId).not.toBe(profile.externalAccountId);
  });

  it('bug (partial consent): reports only the permissions the user granted, so a missing publish permission is seen at connect', async () => {
    simulator.queueConsent('instagram', { externalAccountId: '17841400000000904' });
    const authorize = provider.createAuthorizationUrl({
      state: 'st',
      codeVerifier: null,
      scopes: provider.defaultScopes,
    });
    // The user switches off publishing on Instagram's consent screen.
    authorize.searchParams.set('sim_decline', 'instagram_business_content_publish');
    const redirect = await followAuthorizeRedirect(authorize);
    const tokens = await provider.exchangeAuthorizationCode(redirect.code!, null);
    expect(tokens.scopes).toEqual(['instagram_business_basic']);
  });

  it('asks /me under the pinned Graph API version (INSTAGRAM_GRAPH_VERSION, default the newest)', async () => {
    expect(INSTAGRAM_DEFAULT_GRAPH_VERSION).toBe('v26.0');
    expect(instagramProfileUrl('v25.0')).toBe('https://graph.instagram.com/v25.0/me?fields=user_id,username');
    const pinned = new InstagramProvider(
      {
        ...CLIENT,
        redirectUri: REDIRECT_URI,
        baseUrl: simulator.baseUrlFor('instagram'),
        apiVersion: 'v25.0',
      },
      { timeoutMs: 2000 },
    );
    const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000000905' });
    await expect(pinned.fetchProfile(seeded.accessToken)).resolves.toMatchObject({
      externalAccountId: '17841400000000905',
    });
  });

  it('bug: usage headers near 100 % were ignored until Meta throttled; now they hold further calls', async () => {
    const holds: Array<[ProviderName, number]> = [];
    // What the outbound gate is told: the hold Instagram's usage headers ask for (from time 0).
    const reporting = providerWith(CLIENT.clientSecret, (p, headers) => {
      const until = readInstagramUsageHint(headers, 0);
      if (until !== null) holds.push([p, until]);
    });
    const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000000906' });
    try {
      simulator.settings.instagramAppUsagePercent = 50;
      await reporting.fetchProfile(seeded.accessToken);
      expect(holds).toEqual([]);
      simulator.settings.instagramAppUsagePercent = 90;
      await reporting.fetchProfile(seeded.accessToken);
      expect(holds).toEqual([['instagram', 21_600]]);
    } finally {
      simulator.settings.instagramAppUsagePercent = null;
    }
  });

  it('reads "Error validating client secret" at the code exchange as our configuration', async () => {
    const redirect = await followAuthorizeRedirect(
      provider.createAuthorizationUrl({ state: 'st', codeVerifier: null, scopes: provider.defaultScopes }),
    );
    await expect(
      providerWith('wrong').exchangeAuthorizationCode(redirect.code!, null),
    ).rejects.toBeInstanceOf(ProviderConfigError);
  });

  it('refreshes a long-lived token at least 24 hours old: the token itself, no refresh token', async () => {
    const seeded = simulator.seedAccount('instagram', {
      externalAccountId: '17841400000001001',
      issuedAt: clock.now() - 25 * HOUR,
    });
    const renewed = await provider.refreshAccessToken({
      accessToken: seeded.accessToken,
      refreshToken: null,
    });
    expect(renewed).toMatchObject({ refreshToken: null, expiresInSeconds: 60 * 86_400 });
    expect(simulator.isAccessTokenValid('instagram', renewed.accessToken!)).toBe(true);
    expect(simulator.refreshCalls('instagram', '17841400000001001')).toBe(1);
  });

  it('is refused a refresh of a token younger than 24 hours, as retryable, and the token stays valid', async () => {
    const seeded = simulator.seedAccount('instagram', {
      externalAccountId: '17841400000001002',
      issuedAt: clock.now() - 23 * HOUR,
    });
    const error = await provider
      .refreshAccessToken({ accessToken: seeded.accessToken, refreshToken: null })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ProviderResponseInvalid);
    expect(error).not.toBeInstanceOf(ReauthorizationRequired);
    expect(simulator.isAccessTokenValid('instagram', seeded.accessToken)).toBe(true);
  });

  it('cannot bring back an expired token: code 190 means re-authorize', async () => {
    const seeded = simulator.seedAccount('instagram', {
      externalAccountId: '17841400000001003',
      issuedAt: clock.now() - 61 * DAY,
      accessExpiresAt: clock.now() - DAY,
    });
    const error = await provider
      .refreshAccessToken({ accessToken: seeded.accessToken, refreshToken: null })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ReauthorizationRequired);
    expect(error).toMatchObject({ providerErrorCode: '190/463', httpStatus: 400 });
  });

  it('sees a user who removed the app as re-authorize on the profile', async () => {
    const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000001004' });
    simulator.revokeGrant('instagram', '17841400000001004');
    await expect(provider.fetchProfile(seeded.accessToken)).rejects.toBeInstanceOf(ReauthorizationRequired);
  });

  it('has no revocation endpoint: revokeToken is a configuration error', async () => {
    expect(provider.capabilities.hasRevocationEndpoint).toBe(false);
    await expect(provider.revokeToken('IGAAwhatever')).rejects.toBeInstanceOf(ProviderConfigError);
  });

  it('reads throttling (code 4) as RateLimited with the wait from X-Business-Use-Case-Usage', async () => {
    const seeded = simulator.seedAccount('instagram', { externalAccountId: '17841400000001005' });
    simulator.faults.set('instagram', { rateLimitNext: 1, retryAfterSeconds: 120 });
    try {
      const error = await provider.fetchProfile(seeded.accessToken).catch((e) => e);
      expect(error).toBeInstanceOf(RateLimited);
      expect(error.retryAfterMs).toBe(120_000);
    } finally {
      simulator.faults.clear();
    }
  });
});

describe('classifyInstagramError', () => {
  const none = new Headers();
  const now = Date.parse('2026-01-01T00:00:00Z');
  const graph = (code: number, message: string, error_subcode?: number) => ({
    error: { message, type: 'OAuthException', code, error_subcode, fbtrace_id: 'AbC123' },
  });
  const cases: Array<
    [rule: string, status: number, body: unknown, expected: new (...args: never[]) => OAuthProviderError]
  > = [
    [
      '190 (invalid token) means re-authorize',
      400,
      graph(190, 'Invalid OAuth access token - Cannot parse access token'),
      ReauthorizationRequired,
    ],
    [
      '190/463 (expired) means re-authorize',
      400,
      graph(190, 'Error validating access token: Session has expired', 463),
      ReauthorizationRequired,
    ],
    [
      '190/460 (password changed) means re-authorize',
      400,
      graph(190, 'The session has been invalidated because the user changed their password', 460),
      ReauthorizationRequired,
    ],
    [
      '190/458 (app removed) means re-authorize',
      400,
      graph(190, 'The user has not authorized application.', 458),
      ReauthorizationRequired,
    ],
    [
      '10 (permission denied) means re-authorize',
      400,
      graph(10, 'Application does not have permission for this action'),
      ReauthorizationRequired,
    ],
    [
      '200-299 (missing permission) means re-authorize',
      403,
      graph(200, 'Requires instagram_business_content_publish permission'),
      ReauthorizationRequired,
    ],
    [
      '1 (unknown error) is transient',
      500,
      graph(1, 'An unknown error has occurred.'),
      TransientProviderError,
    ],
    [
      '2 (service error) is transient',
      503,
      graph(2, 'An unexpected error has occurred. Please retry your request later.'),
      TransientProviderError,
    ],
    ['4 (app rate limit) is rate limited', 400, graph(4, 'Application request limit reached'), RateLimited],
    ['17 (user rate limit) is rate limited', 400, graph(17, 'User request limit reached'), RateLimited],
    ['32 (page rate limit) is rate limited', 400, graph(32, 'Page request limit reached'), RateLimited],
    [
      '613 (custom rate limit) is rate limited',
      400,
      graph(613, 'Calls to this api have exceeded the rate limit.'),
      RateLimited,
    ],
    [
      '100 "Error validating client secret" is our configuration',
      400,
      graph(100, 'Error validating client secret.'),
      ProviderConfigError,
    ],
    [
      '1/33 "Error validating client secret" is our configuration, not transient',
      400,
      graph(1, 'Error validating client secret', 33),
      ProviderConfigError,
    ],
    [
      'the code exchange "Matching code was not found or was already used" means connect again',
      400,
      {
        error_type: 'OAuthException',
        code: 400,
        error_message: 'Matching code was not found or was already used.',
      },
      ReauthorizationRequired,
    ],
    [
      'the code exchange "Invalid platform app" is our configuration',
      400,
      { error_type: 'OAuthException', code: 400, error_message: 'Invalid platform app' },
      ProviderConfigError,
    ],
    [
      'an unrecognised 400 is not trusted, not a dead grant',
      400,
      graph(100, 'Unsupported get request.'),
      ProviderResponseInvalid,
    ],
    ['a bare 502 is transient', 502, undefined, TransientProviderError],
    [
      '190/467 (invalid session) arrives with HTTP 400, not 401, and means re-authorize',
      400,
      {
        error: {
          message: 'Error validating access token: The session is invalid because the user logged out.',
          type: 'OAuthException',
          code: 190,
          error_subcode: 467,
          fbtrace_id: 'A8dKcD2pPzT',
        },
      },
      ReauthorizationRequired,
    ],
    [
      '190 is re-authorize under HTTP 401 as well',
      401,
      graph(190, 'Invalid OAuth access token - Cannot parse access token'),
      ReauthorizationRequired,
    ],
    [
      '299 (last of the permission range) means re-authorize',
      400,
      graph(299, 'Requires extended permission'),
      ReauthorizationRequired,
    ],
    [
      '80002 (Instagram Business Use Case throttle) is rate limited',
      400,
      graph(80002, 'There have been too many calls to this Instagram account. Wait a bit and try again.'),
      RateLimited,
    ],
  ];

  it.each(cases)('%s', (_rule, status, body, expected) => {
    expect(classifyInstagramError(status, body, none, now)).toBeInstanceOf(expected);
  });

  it('names code and subcode together in providerErrorCode', () => {
    expect(classifyInstagramError(400, graph(190, 'expired', 463), none, now).providerErrorCode).toBe(
      '190/463',
    );
  });

  it('takes the longest estimated_time_to_regain_access (minutes) as the wait', () => {
    const headers = new Headers({
      'x-business-use-case-usage': JSON.stringify({
        '1784': [
          { type: 'instagram', call_count: 100, estimated_time_to_regain_access: 5 },
          { type: 'instagram', call_count: 90, estimated_time_to_regain_access: 12 },
        ],
      }),
    });
    const error = classifyInstagramError(400, graph(4, 'Application request limit reached'), headers, now);
    expect((error as RateLimited).retryAfterMs).toBe(12 * 60_000);
  });
});

describe('parseInstagramJson', () => {
  it('keeps user_id digits beyond 2^53 exactly', () => {
    expect(parseInstagramJson('{"data":[{"access_token":"t","user_id":17841405822304914}]}')).toEqual({
      data: [{ access_token: 't', user_id: '17841405822304914' }],
    });
  });
});
