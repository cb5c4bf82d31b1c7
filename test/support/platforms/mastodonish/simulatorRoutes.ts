import type { RouteKind } from '../../../../src/simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  scopeList,
} from '../../../../src/simulator/platformRoutes.js';
import { grantedScopes, verifierMatches } from '../../../../src/simulator/state.js';
import {
  json,
  presentedAccessToken,
  redirect,
  type SimRequest,
  type SimResponse,
  text,
} from '../../../../src/simulator/wire.js';

/** The throwaway platform's server side (see oauthClient.ts): RFC 6749 with rotating refresh tokens. */
const NAME = 'mastodonish';
const ACCESS_SECONDS = 3600;

function oauthError(status: number, error: string): SimResponse {
  return json(status, { error, error_description: error });
}

function authorize(request: SimRequest, { state }: RouteContext): SimResponse {
  const clientId = request.query.get('client_id');
  const redirectUri = request.query.get('redirect_uri');
  if (!state.clientMatches(NAME, clientId)) return text(401, 'invalid_client');
  if (redirectUri === null || !URL.canParse(redirectUri)) return text(400, 'invalid redirect_uri');
  const requested = scopeList(request.query.get('scope'), ' ', state.defaultScopes(NAME));
  const stateParam = request.query.get('state');
  const consent = state.takeConsent(NAME, consentFromQuery(request.query));
  if (consent.deny) return redirect(redirectUrl(redirectUri, { error: 'access_denied', state: stateParam }));
  const account = state.upsertAccount(NAME, consent.externalAccountId, consent.displayName);
  const code = state.createCode({
    provider: NAME,
    clientId: clientId ?? '',
    redirectUri,
    codeChallenge: request.query.get('code_challenge'),
    codeChallengeMethod: request.query.get('code_challenge_method'),
    scopes: grantedScopes(requested, consent),
    externalAccountId: account.externalAccountId,
    offline: true,
  });
  return redirect(redirectUrl(redirectUri, { code: code.code, state: stateParam }));
}

function issue(context: RouteContext, externalAccountId: string, scopes: string[]): SimResponse {
  const access = context.state.issueAccessToken(NAME, externalAccountId, {
    scopes,
    lifetimeSeconds: ACCESS_SECONDS,
  });
  const refresh = context.state.issueRefreshToken(NAME, externalAccountId, { scopes, expiresAtMs: null });
  return json(200, {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: ACCESS_SECONDS,
    refresh_token: refresh.token,
    scope: scopes.join(' '),
  });
}

function token(request: SimRequest, context: RouteContext): SimResponse {
  const { state } = context;
  const form = request.form;
  if (!state.clientMatches(NAME, form.get('client_id'), form.get('client_secret')))
    return oauthError(401, 'invalid_client');
  if (form.get('grant_type') === 'authorization_code') {
    const code = state.redeemCode(NAME, form.get('code'));
    if (typeof code === 'string' || code.redirectUri !== form.get('redirect_uri'))
      return oauthError(400, 'invalid_grant');
    if (!verifierMatches(code, form.get('code_verifier'))) return oauthError(400, 'invalid_grant');
    return issue(context, code.externalAccountId, code.scopes);
  }
  if (form.get('grant_type') === 'refresh_token') {
    const record = state.findRefreshToken(NAME, form.get('refresh_token'));
    if (record === undefined || !state.refreshTokenUsable(record, null))
      return oauthError(400, 'invalid_grant');
    // Rotation: the refresh token sent is spent by the answer that replaces it.
    record.spent = true;
    return issue(context, record.externalAccountId, record.scopes);
  }
  return oauthError(400, 'unsupported_grant_type');
}

function revoke(request: SimRequest, { state }: RouteContext): SimResponse {
  const presented = request.form.get('token');
  const owner =
    state.validAccessToken(NAME, presented)?.externalAccountId ??
    state.findRefreshToken(NAME, presented)?.externalAccountId;
  if (owner === undefined) return oauthError(400, 'invalid_token');
  state.revokeGrant(NAME, owner);
  return json(200, {});
}

function verifyCredentials(request: SimRequest, { state }: RouteContext): SimResponse {
  const access = state.validAccessToken(NAME, presentedAccessToken(request));
  if (access === null) return oauthError(401, 'invalid_token');
  const account = state.account(NAME, access.externalAccountId);
  return json(200, { id: access.externalAccountId, username: account?.displayName ?? null });
}

export const mastodonishRoutes: PlatformRoutes = {
  provider: NAME,
  routeKind(request): RouteKind | null {
    if (request.method === 'GET' && request.path === '/oauth/authorize') return 'authorize';
    if (request.method === 'POST' && request.path === '/oauth/token')
      return request.form.get('grant_type') === 'refresh_token' ? 'refresh' : 'token';
    if (request.method === 'POST' && request.path === '/oauth/revoke') return 'revoke';
    if (request.method === 'GET' && request.path === '/api/v1/accounts/verify_credentials') return 'profile';
    return null;
  },
  refreshSubject(request, state) {
    return state.findRefreshToken(NAME, request.form.get('refresh_token'))?.externalAccountId ?? null;
  },
  handle(request, context) {
    switch (mastodonishRoutes.routeKind(request)) {
      case 'authorize':
        return authorize(request, context);
      case 'token':
      case 'refresh':
        return token(request, context);
      case 'revoke':
        return revoke(request, context);
      case 'profile':
        return verifyCredentials(request, context);
      default:
        return json(404, { error: 'Record not found' });
    }
  },
  serverError(status) {
    return json(status, { error: 'server_error' });
  },
  rateLimited(retryAfterSeconds) {
    return json(
      429,
      { error: 'Too many requests' },
      retryAfterSeconds === null ? undefined : { 'retry-after': String(retryAfterSeconds) },
    );
  },
};
