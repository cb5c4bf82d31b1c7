import type { RouteKind } from '../../simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  retryAfterHeaders,
  scopeList,
} from '../../simulator/platformRoutes.js';
import { DEFAULT_SCOPES, traceId, verifierMatches } from '../../simulator/state.js';
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
  const scopes = scopeList(request.query.get('scope'), ' ', DEFAULT_SCOPES.youtube);
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

function token(request: SimRequest, { state }: RouteContext): SimResponse {
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
    const refresh = code.offline
      ? state.issueRefreshToken('youtube', code.externalAccountId, { scopes: code.scopes, expiresAtMs: null })
      : null;
    return json(200, {
      access_token: access.token,
      expires_in: state.lifetimes.googleAccessSeconds,
      ...(refresh === null ? {} : { refresh_token: refresh.token }),
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
    // No refresh_token in a refresh response: the one sent stays the one to keep.
    return json(200, {
      access_token: access.token,
      expires_in: state.lifetimes.googleAccessSeconds,
      scope: record.scopes.join(' '),
      token_type: 'Bearer',
    });
  }

  return oauthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grantType ?? ''}`);
}

function revoke(request: SimRequest, { state }: RouteContext): SimResponse {
  const token = request.form.get('token') ?? request.query.get('token');
  const access = state.validAccessToken('youtube', token);
  const refresh = state.findRefreshToken('youtube', token);
  const owner =
    access?.externalAccountId ?? (refresh?.revoked === false ? refresh.externalAccountId : undefined);
  if (owner === undefined) return oauthError(400, 'invalid_token', 'Token expired or revoked');
  // Either token of a grant revokes the whole grant.
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
