import type { RouteKind } from '../../simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  retryAfterHeaders,
  scopeList,
} from '../../simulator/platformRoutes.js';
import { grantedScopes, type RefreshTokenRecord, traceId, verifierMatches } from '../../simulator/state.js';
import {
  json,
  presentedAccessToken,
  redirect,
  type SimRequest,
  type SimResponse,
  text,
} from '../../simulator/wire.js';

/**
 * Google OAuth 2.0 plus the YouTube Data API channels.list: refresh tokens that do not rotate, die
 * after six months unused or on revocation, and all failures of a grant look like `invalid_grant`.
 * Each rule names its source; docs/PLATFORMS.md lists them with the tests that pin them. Pages:
 * - "Using OAuth 2.0 for Web Server Applications" (developers.google.com/identity/protocols/oauth2/web-server)
 * - "Using OAuth 2.0 to Access Google APIs" (developers.google.com/identity/protocols/oauth2)
 * - "How to handle granular permissions" (…/oauth2/resources/granular-permissions)
 */

const AUTHORIZE = '/o/oauth2/v2/auth';
const TOKEN = '/token';
const REVOKE = '/revoke';
const CHANNELS = '/youtube/v3/channels';

/** channels.list?mine=true accepts any of these; youtube.upload alone is not enough. */
const CHANNEL_READ_SCOPES = [
  'https://www.googleapis.com/auth/youtube',
  'https://www.googleapis.com/auth/youtube.readonly',
  'https://www.googleapis.com/auth/youtube.force-ssl',
];

function oauthError(status: number, error: string, description: string): SimResponse {
  return json(status, { error, error_description: description });
}

function apiError(status: number, statusName: string, reason: string, message: string): SimResponse {
  return json(
    status,
    {
      error: {
        code: status,
        message,
        errors: [{ message, domain: 'global', reason }],
        status: statusName,
      },
    },
    status === 401
      ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' }
      : undefined,
  );
}

function authorize(request: SimRequest, { state }: RouteContext): SimResponse {
  const clientId = request.query.get('client_id');
  const redirectUri = request.query.get('redirect_uri');
  if (!state.clientMatches('youtube', clientId)) return text(401, 'Error 401: invalid_client');
  if (redirectUri === null || !URL.canParse(redirectUri))
    return text(400, 'Error 400: redirect_uri_mismatch');
  if (request.query.get('response_type') !== 'code') return text(400, 'Error 400: invalid_request');
  if (request.query.get('scope') === null)
    return text(400, 'Error 400: invalid_request (Missing required parameter: scope)');
  // Web server apps, "scope": "A space-delimited list of scopes". A comma-joined list is one
  // unknown scope, which Google answers with an error page, not a redirect.
  const requested = scopeList(request.query.get('scope'), ' ', state.defaultScopes('youtube'));
  if (requested.some((scope) => scope.includes(',')))
    return text(400, 'Error 400: invalid_scope (Some requested scopes were invalid)');
  const stateParam = request.query.get('state');

  const consent = state.takeConsent('youtube', consentFromQuery(request.query));
  if (consent.deny) {
    return redirect(
      redirectUrl(redirectUri, {
        error: 'access_denied',
        error_description: 'The user denied access',
        state: stateParam,
      }),
    );
  }
  const account = state.upsertAccount('youtube', consent.externalAccountId, consent.displayName);
  // Granular permissions: the consent screen has a checkbox per scope; the app "must check what
  // scopes are granted by the users and can't assume users grant all requested scopes".
  const scopes = grantedScopes(requested, consent);
  const firstConsent = state.markConsented('youtube', account.externalAccountId);
  const code = state.createCode({
    provider: 'youtube',
    clientId: clientId ?? '',
    redirectUri,
    codeChallenge: request.query.get('code_challenge'),
    codeChallengeMethod: request.query.get('code_challenge_method'),
    scopes,
    externalAccountId: account.externalAccountId,
    // Without access_type=offline there is no refresh token at all; without prompt=consent, only
    // the account's first consent carries one.
    offline:
      request.query.get('access_type') === 'offline' &&
      (firstConsent || request.query.get('prompt')?.split(' ').includes('consent') === true),
  });
  return redirect(redirectUrl(redirectUri, { code: code.code, scope: scopes.join(' '), state: stateParam }));
}

/** refresh_token_expires_in: "the remaining lifetime of the refresh token in seconds", when it has one. */
function remainingLifetime(record: RefreshTokenRecord, now: number): { refresh_token_expires_in?: number } {
  if (record.expiresAtMs === null) return {};
  return { refresh_token_expires_in: Math.max(0, Math.floor((record.expiresAtMs - now) / 1000)) };
}

function token(request: SimRequest, context: RouteContext): SimResponse {
  const { state } = context;
  const form = request.form;
  if (!state.clientMatches('youtube', form.get('client_id'), form.get('client_secret'))) {
    return oauthError(401, 'invalid_client', 'Unauthorized');
  }
  const grantType = form.get('grant_type');

  if (grantType === 'authorization_code') {
    const code = state.redeemCode('youtube', form.get('code'));
    if (typeof code === 'string') return oauthError(400, 'invalid_grant', 'Malformed auth code.');
    if (code.redirectUri !== form.get('redirect_uri'))
      return oauthError(400, 'redirect_uri_mismatch', 'Bad Request');
    if (!verifierMatches(code, form.get('code_verifier'))) {
      return oauthError(400, 'invalid_grant', 'Invalid code verifier.');
    }
    const access = state.issueAccessToken('youtube', code.externalAccountId, {
      scopes: code.scopes,
      lifetimeSeconds: state.lifetimes.googleAccessSeconds,
    });
    // "Refresh token expiration": a client in Testing publishing status "is issued a refresh token
    // expiring in 7 days"; the response says so in refresh_token_expires_in (web server apps,
    // "Step 5", the response fields).
    const testing = context.settings.googlePublishingStatus === 'testing';
    const refresh = code.offline
      ? state.issueRefreshToken('youtube', code.externalAccountId, {
          scopes: code.scopes,
          expiresAtMs: testing ? state.now() + state.lifetimes.googleTestingRefreshSeconds * 1000 : null,
        })
      : null;
    return json(200, {
      access_token: access.token,
      expires_in: state.lifetimes.googleAccessSeconds,
      ...(refresh === null
        ? {}
        : { refresh_token: refresh.token, ...remainingLifetime(refresh, state.now()) }),
      scope: code.scopes.join(' '),
      token_type: 'Bearer',
    });
  }

  if (grantType === 'refresh_token') {
    const record = state.findRefreshToken('youtube', form.get('refresh_token'));
    const now = state.now();
    const dead =
      record === undefined ||
      record.revoked ||
      (record.expiresAtMs !== null && now >= record.expiresAtMs) ||
      now - record.lastUsedAtMs >= state.lifetimes.googleRefreshIdleSeconds * 1000;
    // Revoked, idle six months, Testing-mode expiry: Google gives them all the same answer.
    if (dead || record === undefined)
      return oauthError(400, 'invalid_grant', 'Token has been expired or revoked.');
    record.lastUsedAtMs = now;
    const access = state.issueAccessToken('youtube', record.externalAccountId, {
      scopes: record.scopes,
      lifetimeSeconds: state.lifetimes.googleAccessSeconds,
    });
    // No refresh_token in a refresh response: the one sent stays the one to keep. A Testing-mode
    // token's expiry is not moved by using it: the remaining lifetime only shrinks.
    return json(200, {
      access_token: access.token,
      expires_in: state.lifetimes.googleAccessSeconds,
      ...remainingLifetime(record, now),
      scope: record.scopes.join(' '),
      token_type: 'Bearer',
    });
  }

  return oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
}

/**
 * Web server apps, "Revoking a token": the token "can be an access token or a refresh token"; an
 * access token with a corresponding refresh token revokes that too, so either ends the whole grant.
 * Success is 200; an error is 400 with `invalid_token`, which is what an expired access token or a
 * dead refresh token earns: nothing is revoked then, and a live refresh token stays live.
 */
function revoke(request: SimRequest, { state }: RouteContext): SimResponse {
  const token = request.form.get('token') ?? request.query.get('token');
  const access = state.validAccessToken('youtube', token);
  const refresh = state.findRefreshToken('youtube', token);
  const liveRefresh =
    refresh !== undefined &&
    state.refreshTokenUsable(refresh, state.lifetimes.googleRefreshIdleSeconds * 1000);
  const owner = access?.externalAccountId ?? (liveRefresh ? refresh.externalAccountId : undefined);
  if (owner === undefined) return oauthError(400, 'invalid_token', 'Token expired or revoked');
  state.revokeGrant('youtube', owner);
  return json(200, {});
}

function channels(request: SimRequest, { state }: RouteContext): SimResponse {
  const token = state.validAccessToken('youtube', presentedAccessToken(request));
  if (token === null) {
    return apiError(
      401,
      'UNAUTHENTICATED',
      'authError',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
    );
  }
  if (!token.scopes.some((scope) => CHANNEL_READ_SCOPES.includes(scope))) {
    return apiError(
      403,
      'PERMISSION_DENIED',
      'insufficientPermissions',
      'Request had insufficient authentication scopes.',
    );
  }
  const account = state.account('youtube', token.externalAccountId);
  return json(200, {
    kind: 'youtube#channelListResponse',
    etag: traceId(),
    pageInfo: { totalResults: 1, resultsPerPage: 5 },
    items: [
      {
        kind: 'youtube#channel',
        etag: traceId(),
        id: token.externalAccountId,
        snippet: { title: account?.displayName ?? '', description: '', publishedAt: '2020-01-01T00:00:00Z' },
      },
    ],
  });
}

export const youtubeRoutes: PlatformRoutes = {
  provider: 'youtube',
  routeKind(request): RouteKind | null {
    if (request.method === 'GET' && request.path === AUTHORIZE) return 'authorize';
    if (request.method === 'POST' && request.path === TOKEN) {
      return request.form.get('grant_type') === 'refresh_token' ? 'refresh' : 'token';
    }
    if (request.method === 'POST' && request.path === REVOKE) return 'revoke';
    if (request.method === 'GET' && request.path === CHANNELS) return 'profile';
    return null;
  },
  refreshSubject(request, state) {
    return state.findRefreshToken('youtube', request.form.get('refresh_token'))?.externalAccountId ?? null;
  },
  handle(request, context) {
    switch (this.routeKind(request)) {
      case 'authorize':
        return authorize(request, context);
      case 'token':
      case 'refresh':
        return token(request, context);
      case 'revoke':
        return revoke(request, context);
      case 'profile':
        return channels(request, context);
      default:
        return apiError(404, 'NOT_FOUND', 'notFound', 'Not Found');
    }
  },
  serverError(status) {
    return apiError(status, 'UNAVAILABLE', 'backendError', 'The service is currently unavailable.');
  },
  rateLimited(retryAfterSeconds) {
    const response = apiError(429, 'RESOURCE_EXHAUSTED', 'rateLimitExceeded', 'Rate Limit Exceeded');
    return { ...response, headers: retryAfterHeaders(retryAfterSeconds) };
  },
};
