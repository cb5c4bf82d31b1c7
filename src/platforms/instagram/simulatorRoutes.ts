import type { RouteKind } from '../../simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  retryAfterHeaders,
  scopeList,
} from '../../simulator/platformRoutes.js';
import { type AccessTokenRecord, DEFAULT_SCOPES, traceId } from '../../simulator/state.js';
import {
  json,
  presentedAccessToken,
  redirect,
  type SimRequest,
  type SimResponse,
  text,
} from '../../simulator/wire.js';

/**
 * Instagram API with Instagram Login: the code buys a 1-hour token on api.instagram.com, which is
 * swapped for a 60-day one on graph.instagram.com, which refreshes itself (no refresh token) once
 * it is a day old.
 */

const AUTHORIZE = '/oauth/authorize';
const SHORT_LIVED = '/oauth/access_token';
const LONG_LIVED = '/access_token';
const REFRESH = '/refresh_access_token';
const ME = '/me';

const DAY_MS = 86_400_000;

/** The Graph API's error envelope; Meta answers OAuthException with 400. */
function graphError(code: number, message: string, subcode?: number, status = 400): SimResponse {
  return json(status, {
    error: { message, type: 'OAuthException', code, error_subcode: subcode, fbtrace_id: traceId() },
  });
}

/** api.instagram.com still answers in the Basic Display era's flat shape. */
function legacyError(message: string): SimResponse {
  return json(400, { error_type: 'OAuthException', code: 400, error_message: message });
}

/**
 * Why a presented token is refused, in Meta's words: unknown (190), expired (190/463), the user
 * removed the app (190/458).
 */
function tokenProblem(record: AccessTokenRecord | undefined, nowMs: number): SimResponse | null {
  if (record === undefined) return graphError(190, 'Invalid OAuth access token - Cannot parse access token');
  if (record.revoked) {
    return graphError(190, 'Error validating access token: The user has not authorized application.', 458);
  }
  if (nowMs >= record.expiresAtMs) {
    const at = new Date(record.expiresAtMs).toUTCString();
    return graphError(190, `Error validating access token: Session has expired on ${at}.`, 463);
  }
  return null;
}

function authorize(request: SimRequest, { state }: RouteContext): SimResponse {
  const clientId = request.query.get('client_id');
  const redirectUri = request.query.get('redirect_uri');
  if (!state.clientMatches('instagram', clientId)) return text(400, 'Invalid platform app');
  if (redirectUri === null || !URL.canParse(redirectUri)) return text(400, 'Invalid redirect_uri');
  if (request.query.get('response_type') !== 'code') return text(400, 'response_type must be code');
  const stateParam = request.query.get('state');

  const consent = state.takeConsent('instagram', consentFromQuery(request.query));
  if (consent.deny) {
    return redirect(
      redirectUrl(
        redirectUri,
        {
          error: 'access_denied',
          error_reason: 'user_denied',
          error_description: 'The user denied your request.',
          state: stateParam,
        },
        '#_',
      ),
    );
  }
  const account = state.upsertAccount('instagram', consent.externalAccountId, consent.displayName);
  const code = state.createCode({
    provider: 'instagram',
    clientId: clientId ?? '',
    redirectUri,
    codeChallenge: null,
    codeChallengeMethod: null,
    scopes: scopeList(request.query.get('scope'), ',', DEFAULT_SCOPES.instagram),
    externalAccountId: account.externalAccountId,
    offline: true,
  });
  // Instagram ends the redirect with `#_`, which users copy along with the code.
  return redirect(redirectUrl(redirectUri, { code: code.code, state: stateParam }, '#_'));
}

function shortLivedToken(request: SimRequest, context: RouteContext): SimResponse {
  const { state, settings } = context;
  const form = request.form;
  if (!state.clientMatches('instagram', form.get('client_id'))) return legacyError('Invalid platform app');
  if (!state.secretMatches('instagram', form.get('client_secret'))) {
    return legacyError('Error validating client secret.');
  }
  if (form.get('grant_type') !== 'authorization_code') return legacyError('Invalid grant_type');
  const code = state.redeemCode('instagram', form.get('code'));
  if (typeof code === 'string') return legacyError('Matching code was not found or was already used.');
  if (code.redirectUri !== form.get('redirect_uri')) {
    return legacyError(
      'Error validating verification code. Please make sure your redirect_uri is identical.',
    );
  }
  const token = state.issueAccessToken('instagram', code.externalAccountId, {
    scopes: code.scopes,
    lifetimeSeconds: state.lifetimes.instagramShortSeconds,
    instagramKind: 'short',
  });
  // user_id goes out as a bare JSON number, beyond 2^53 for real ids: clients must not round it.
  const userId = /^\d+$/.test(code.externalAccountId)
    ? code.externalAccountId
    : JSON.stringify(code.externalAccountId);
  const entry = `{"access_token":${JSON.stringify(token.token)},"user_id":${userId},"permissions":${JSON.stringify(code.scopes.join(','))}}`;
  const body = settings.instagramTokenShape === 'wrapped' ? `{"data":[${entry}]}` : entry;
  return { kind: 'raw', status: 200, text: body, contentType: 'application/json; charset=utf-8' };
}

function longLivedToken(request: SimRequest, { state }: RouteContext): SimResponse {
  if (request.query.get('grant_type') !== 'ig_exchange_token') {
    return graphError(100, 'Unsupported grant_type, expected ig_exchange_token');
  }
  if (!state.secretMatches('instagram', request.query.get('client_secret'))) {
    return graphError(100, 'Error validating client secret.');
  }
  const record = state.findAccessToken('instagram', request.query.get('access_token'));
  const problem = tokenProblem(record, state.now());
  if (problem !== null || record === undefined)
    return problem ?? graphError(190, 'Invalid OAuth access token');
  if (record.instagramKind !== 'short') return graphError(100, 'Only short-lived tokens can be exchanged');
  const lifetime = state.lifetimes.instagramLongSeconds;
  const long = state.issueAccessToken('instagram', record.externalAccountId, {
    scopes: record.scopes,
    lifetimeSeconds: lifetime,
    instagramKind: 'long',
  });
  return json(200, { access_token: long.token, token_type: 'bearer', expires_in: lifetime });
}

function refresh(request: SimRequest, { state }: RouteContext): SimResponse {
  const record = state.findAccessToken('instagram', request.query.get('access_token'));
  if (request.query.get('grant_type') !== 'ig_refresh_token') {
    return graphError(100, 'Unsupported grant_type, expected ig_refresh_token');
  }
  const problem = tokenProblem(record, state.now());
  if (problem !== null || record === undefined)
    return problem ?? graphError(190, 'Invalid OAuth access token');
  // "at least 24 hours old but has not expired": a younger one is refused, and stays valid. Meta
  // does not document the code for this; 100 (invalid parameter) is the simulator's choice.
  if (record.instagramKind !== 'long') return graphError(100, 'Only long-lived tokens can be refreshed');
  if (state.now() - record.issuedAtMs < DAY_MS) {
    return graphError(100, 'The access token must be at least 24 hours old to be refreshed');
  }
  const lifetime = state.lifetimes.instagramLongSeconds;
  const renewed = state.issueAccessToken('instagram', record.externalAccountId, {
    scopes: record.scopes,
    lifetimeSeconds: lifetime,
    instagramKind: 'long',
  });
  return json(200, {
    access_token: renewed.token,
    token_type: 'bearer',
    expires_in: lifetime,
    permissions: record.scopes.join(','),
  });
}

function me(request: SimRequest, { state }: RouteContext): SimResponse {
  const record = state.findAccessToken('instagram', presentedAccessToken(request));
  const problem = tokenProblem(record, state.now());
  if (problem !== null || record === undefined)
    return problem ?? graphError(190, 'Invalid OAuth access token');
  const account = state.account('instagram', record.externalAccountId);
  const fields = scopeList(request.query.get('fields'), ',', ['id']);
  const all: Record<string, string> = {
    // The app-scoped id differs from the professional account's user_id; we key on user_id.
    id: `app-scoped-${record.externalAccountId}`,
    user_id: record.externalAccountId,
    username: account?.displayName ?? '',
  };
  return json(200, Object.fromEntries(Object.entries(all).filter(([field]) => fields.includes(field))));
}

export const instagramRoutes: PlatformRoutes = {
  provider: 'instagram',
  routeKind(request): RouteKind | null {
    if (request.method === 'GET' && request.path === AUTHORIZE) return 'authorize';
    if (request.method === 'POST' && request.path === SHORT_LIVED) return 'token';
    if (request.method === 'GET' && request.path === LONG_LIVED) return 'token';
    if (request.method === 'GET' && request.path === REFRESH) return 'refresh';
    if (request.method === 'GET' && request.path === ME) return 'profile';
    return null;
  },
  refreshSubject(request, state) {
    return state.findAccessToken('instagram', request.query.get('access_token'))?.externalAccountId ?? null;
  },
  handle(request, context) {
    if (request.path === AUTHORIZE) return authorize(request, context);
    if (request.path === SHORT_LIVED) return shortLivedToken(request, context);
    if (request.path === LONG_LIVED) return longLivedToken(request, context);
    if (request.path === REFRESH) return refresh(request, context);
    if (request.path === ME) return me(request, context);
    return graphError(100, 'Unsupported get request.', undefined, 404);
  },
  serverError(status) {
    return graphError(
      2,
      'An unexpected error has occurred. Please retry your request later.',
      undefined,
      status,
    );
  },
  rateLimited(retryAfterSeconds) {
    // Meta throttles with code 4/17/32/613 and a usage header rather than a 429.
    const minutes = retryAfterSeconds === null ? 0 : Math.ceil(retryAfterSeconds / 60);
    const response = graphError(4, 'Application request limit reached');
    return {
      ...response,
      headers: {
        ...retryAfterHeaders(retryAfterSeconds),
        'x-business-use-case-usage': JSON.stringify({
          sandbox: [
            {
              type: 'instagram',
              call_count: 100,
              total_cputime: 25,
              total_time: 25,
              estimated_time_to_regain_access: minutes,
            },
          ],
        }),
      },
    };
  },
};
