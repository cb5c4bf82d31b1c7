import type { RouteKind } from '../../simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  retryAfterHeaders,
  scopeList,
} from '../../simulator/platformRoutes.js';
import { grantedScopes, traceId, verifierMatches } from '../../simulator/state.js';
import {
  json,
  presentedAccessToken,
  redirect,
  type SimRequest,
  type SimResponse,
  text,
} from '../../simulator/wire.js';

/**
 * TikTok Login Kit v2 as seen on the wire: flat OAuth bodies, rotating refresh tokens. Each rule
 * names its source; docs/PLATFORMS.md lists them with the tests that pin them. Pages:
 * - Login Kit for Web / for Desktop (developers.tiktok.com/doc/login-kit-web, /login-kit-desktop)
 * - Manage User Access Tokens (developers.tiktok.com/doc/oauth-user-access-token-management)
 * - OAuth Error Handling (developers.tiktok.com/doc/oauth-error-handling)
 * - Revoke a User Access Token (developers.tiktok.com/docs/en/oauth-revoke-a-user-access-token)
 */

const AUTHORIZE = '/v2/auth/authorize/';
const TOKEN = '/v2/oauth/token/';
const REVOKE = '/v2/oauth/revoke/';
const USER_INFO = '/v2/user/info/';

function oauthError(context: RouteContext, error: string, description: string): SimResponse {
  return json(context.settings.tiktokOAuthErrorStatus, {
    error,
    error_description: description,
    log_id: traceId(),
  });
}

function apiError(status: number, code: string, message: string): SimResponse {
  return json(status, { data: {}, error: { code, message, log_id: traceId() } });
}

function authorize(request: SimRequest, { state }: RouteContext): SimResponse {
  // Login Kit for Web, "Redirect request to TikTok's authorization server": the client id is
  // `client_key`; a request naming `client_id` has none. Without a valid client or redirect URI
  // TikTok shows an error page: there is nowhere to redirect.
  const clientKey = request.query.get('client_key');
  const redirectUri = request.query.get('redirect_uri');
  if (!state.clientMatches('tiktok', clientKey)) return text(400, 'client_key is invalid');
  if (redirectUri === null || !URL.canParse(redirectUri)) return text(400, 'redirect_uri is invalid');
  if (request.query.get('response_type') !== 'code') return text(400, 'response_type must be code');
  const stateParam = request.query.get('state');
  // Login Kit for Desktop, "Generate a code verifier and code challenge": S256 with the hex digest.
  // A base64url challenge (RFC 7636's encoding) is refused before the consent screen.
  const challenge = request.query.get('code_challenge');
  if (challenge !== null) {
    if (request.query.get('code_challenge_method') !== 'S256')
      return text(400, 'code_challenge_method must be S256');
    if (!/^[0-9a-f]{64}$/.test(challenge)) return text(400, 'code_challenge is invalid');
  }
  // Scopes are comma-separated ("scope: ... separated by commas"); a space-joined list is one
  // unknown scope, answered with the error category invalid_scope (OAuth Error Handling).
  const requested = scopeList(request.query.get('scope'), ',', state.defaultScopes('tiktok'));
  if (requested.some((scope) => /\s/.test(scope))) {
    return redirect(
      redirectUrl(redirectUri, {
        error: 'invalid_scope',
        error_description: 'The requested scope is invalid, unknown, or malformed.',
        state: stateParam,
      }),
    );
  }

  const consent = state.takeConsent('tiktok', consentFromQuery(request.query));
  if (consent.deny) {
    return redirect(
      redirectUrl(redirectUri, {
        error: 'access_denied',
        error_description: 'The user denied the request',
        state: stateParam,
      }),
    );
  }
  const account = state.upsertAccount('tiktok', consent.externalAccountId, consent.displayName);
  // "Users have the rights to only agree to a subset of scopes you requested from them."
  const scopes = grantedScopes(requested, consent);
  const code = state.createCode({
    provider: 'tiktok',
    clientId: clientKey ?? '',
    redirectUri,
    codeChallenge: challenge,
    codeChallengeMethod: request.query.get('code_challenge_method'),
    scopes,
    externalAccountId: account.externalAccountId,
    offline: true,
  });
  return redirect(redirectUrl(redirectUri, { code: code.code, scopes: scopes.join(','), state: stateParam }));
}

function issueTokens(
  context: RouteContext,
  externalAccountId: string,
  scopes: string[],
): Record<string, string | number> {
  const { state } = context;
  const access = state.issueAccessToken('tiktok', externalAccountId, {
    scopes,
    lifetimeSeconds: state.lifetimes.tiktokAccessSeconds,
  });
  const refresh = state.issueRefreshToken('tiktok', externalAccountId, {
    scopes,
    expiresAtMs: state.now() + state.lifetimes.tiktokRefreshSeconds * 1000,
  });
  return {
    open_id: externalAccountId,
    scope: scopes.join(','),
    access_token: access.token,
    expires_in: state.lifetimes.tiktokAccessSeconds,
    refresh_token: refresh.token,
    refresh_expires_in: state.lifetimes.tiktokRefreshSeconds,
    token_type: 'Bearer',
  };
}

function token(request: SimRequest, context: RouteContext): SimResponse {
  const { state } = context;
  const form = request.form;
  if (!state.clientMatches('tiktok', form.get('client_key'), form.get('client_secret'))) {
    return oauthError(context, 'invalid_client', 'Client key or secret is incorrect.');
  }
  const grantType = form.get('grant_type');

  if (grantType === 'authorization_code') {
    const code = state.redeemCode('tiktok', form.get('code'));
    if (typeof code === 'string')
      return oauthError(context, 'invalid_grant', `Authorization code is ${code}.`);
    // OAuth Error Handling: invalid_grant covers a grant that "does not match the redirection URI
    // used in the authorization request" (Manage User Access Tokens: redirect_uri "must be the same").
    if (code.redirectUri !== form.get('redirect_uri')) {
      return oauthError(context, 'invalid_grant', 'redirect_uri does not match the authorization request.');
    }
    if (!verifierMatches(code, form.get('code_verifier'), 'hex')) {
      // TikTok answers a PKCE mismatch with invalid_request, not RFC 7636's invalid_grant.
      return oauthError(context, 'invalid_request', 'Code verifier or code challenge is invalid.');
    }
    return json(200, issueTokens(context, code.externalAccountId, code.scopes));
  }

  if (grantType === 'refresh_token') {
    const record = state.findRefreshToken('tiktok', form.get('refresh_token'));
    if (record === undefined) return oauthError(context, 'invalid_grant', 'Refresh token is invalid.');
    // Rotation: a refresh token works once. Reuse is how a racing second worker loses the account.
    if (record.spent || record.revoked) {
      return oauthError(context, 'invalid_grant', 'Refresh token is invalid or has been revoked.');
    }
    if (record.expiresAtMs !== null && state.now() >= record.expiresAtMs) {
      return oauthError(context, 'invalid_grant', 'Refresh token is expired.');
    }
    record.spent = true;
    record.lastUsedAtMs = state.now();
    // Access tokens issued before stay valid until they expire, as on the real platform.
    return json(200, issueTokens(context, record.externalAccountId, record.scopes));
  }

  return oauthError(context, 'invalid_request', 'grant_type is not supported.');
}

function revoke(request: SimRequest, context: RouteContext): SimResponse {
  const { state } = context;
  const form = request.form;
  if (!state.clientMatches('tiktok', form.get('client_key'), form.get('client_secret'))) {
    return oauthError(context, 'invalid_client', 'Client key or secret is incorrect.');
  }
  // Revoke a User Access Token: `token` is "the user access token to revoke". A refresh token or an
  // expired access token revokes nothing: the grant stays alive. The page says only that a failure
  // answers with an error; the code used here is the OAuth category for an invalid or expired grant.
  const owner = state.validAccessToken('tiktok', form.get('token'))?.externalAccountId;
  if (owner === undefined) return oauthError(context, 'invalid_grant', 'Access token is invalid or expired.');
  // Revoking ends the whole authorization: every token of the user, not just the one sent.
  state.revokeGrant('tiktok', owner);
  return json(200, {});
}

function userInfo(request: SimRequest, { state }: RouteContext): SimResponse {
  const token = state.validAccessToken('tiktok', presentedAccessToken(request));
  if (token === null) {
    return apiError(401, 'access_token_invalid', 'The access token is invalid or not found in the request.');
  }
  if (!token.scopes.includes('user.info.basic')) {
    return apiError(
      401,
      'scope_not_authorized',
      'The user did not authorize the scope required for this endpoint.',
    );
  }
  const account = state.account('tiktok', token.externalAccountId);
  const fields = scopeList(request.query.get('fields'), ',', ['open_id']);
  const all: Record<string, string> = {
    open_id: token.externalAccountId,
    union_id: `union-${token.externalAccountId}`,
    avatar_url: 'https://p16-sign.tiktokcdn.com/sandbox-avatar.jpeg',
    display_name: account?.displayName ?? '',
  };
  const user = Object.fromEntries(Object.entries(all).filter(([field]) => fields.includes(field)));
  return json(200, { data: { user }, error: { code: 'ok', message: '', log_id: traceId() } });
}

/**
 * The one-minute window and the 429 `rate_limit_exceeded` are documented ("Rate Limits on API
 * Requests"); the x-ratelimit-* headers are not, and are sent only when the knob is on.
 */
function withRateLimit(context: RouteContext, answer: () => SimResponse): SimResponse {
  const limit = context.settings.tiktokRateLimit;
  if (limit === null) return answer();
  const { count, resetAtMs } = context.state.countInWindow('tiktok:oauth', limit.windowSeconds * 1000);
  const headers = {
    'x-ratelimit-limit': String(limit.limit),
    'x-ratelimit-remaining': String(Math.max(0, limit.limit - count)),
    'x-ratelimit-reset': String(Math.ceil(resetAtMs / 1000)),
  };
  if (count > limit.limit) {
    return json(
      429,
      { data: {}, error: { code: 'rate_limit_exceeded', message: 'Too many requests.', log_id: traceId() } },
      headers,
    );
  }
  const response = answer();
  return response.kind === 'json' ? { ...response, headers: { ...response.headers, ...headers } } : response;
}

export const tiktokRoutes: PlatformRoutes = {
  provider: 'tiktok',
  routeKind(request): RouteKind | null {
    if (request.method === 'GET' && request.path === AUTHORIZE) return 'authorize';
    if (request.method === 'POST' && request.path === TOKEN) {
      return request.form.get('grant_type') === 'refresh_token' ? 'refresh' : 'token';
    }
    if (request.method === 'POST' && request.path === REVOKE) return 'revoke';
    if (request.method === 'GET' && request.path === USER_INFO) return 'profile';
    return null;
  },
  refreshSubject(request, state) {
    return state.findRefreshToken('tiktok', request.form.get('refresh_token'))?.externalAccountId ?? null;
  },
  handle(request, context) {
    switch (this.routeKind(request)) {
      case 'authorize':
        return authorize(request, context);
      case 'token':
      case 'refresh':
        return withRateLimit(context, () => token(request, context));
      case 'revoke':
        return revoke(request, context);
      case 'profile':
        return userInfo(request, context);
      default:
        return apiError(404, 'not_found', 'No such endpoint.');
    }
  },
  serverError(status) {
    return json(status, {
      error: 'server_error',
      error_description: 'Internal server error.',
      log_id: traceId(),
    });
  },
  rateLimited(retryAfterSeconds) {
    return json(
      429,
      { data: {}, error: { code: 'rate_limit_exceeded', message: 'Too many requests.', log_id: traceId() } },
      retryAfterHeaders(retryAfterSeconds),
    );
  },
};
