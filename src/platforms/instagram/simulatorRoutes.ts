import { createHash } from 'node:crypto';
import type { RouteKind } from '../../simulator/faults.js';
import {
  consentFromQuery,
  type PlatformRoutes,
  type RouteContext,
  redirectUrl,
  retryAfterHeaders,
} from '../../simulator/platformRoutes.js';
import { type AccessTokenRecord, type SimulatorState, traceId } from '../../simulator/state.js';
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
 * it is a day old. Each rule below names the page (and section) of Meta's documentation it comes
 * from; docs/PLATFORMS.md lists them with the test that pins each.
 */

const AUTHORIZE = '/oauth/authorize';
const SHORT_LIVED = '/oauth/access_token';
const LONG_LIVED = '/access_token';
const REFRESH = '/refresh_access_token';
/** `/me`, unversioned or under a Graph API version (`/v26.0/me`): Meta serves both. */
const ME = /^(?:\/v\d+\.\d+)?\/me$/;

/**
 * The permissions of Instagram API with Instagram Login (Business Login for Instagram, warning at
 * the top): the `business_*` names they replaced were retired on 27 January 2025.
 */
const KNOWN_SCOPES = new Set([
  'instagram_business_basic',
  'instagram_business_content_publish',
  'instagram_business_manage_messages',
  'instagram_business_manage_comments',
  'instagram_business_manage_insights',
]);
/** "instagram_business_basic is required" (Oauth Authorize reference, `scope`): it cannot be declined. */
const REQUIRED_SCOPE = 'instagram_business_basic';

/**
 * The Instagram account the simulated browser is logged in to, per simulator. Without
 * `force_reauth=true` the authorization window binds it without asking who is logging in (Business
 * Login for Instagram, "Step 1. Get authorization", `force_reauth`).
 */
const loggedIn = new WeakMap<SimulatorState, string>();

/**
 * The app-scoped user id the code exchange answers with ("The user's app-scoped User ID": Oauth
 * Access Token reference, response), which is also `/me`'s `id`. It is not `/me`'s `user_id`, the
 * professional account's id we key accounts on. Derived, 17 digits beyond 2^53 like real ones, so a
 * test can compute what a Meta callback would carry.
 */
export function instagramAppScopedId(externalAccountId: string): string {
  const digits = BigInt(`0x${createHash('sha256').update(externalAccountId).digest('hex').slice(0, 15)}`);
  return `2${(digits % 10n ** 16n).toString().padStart(16, '0')}`;
}

const DAY_MS = 86_400_000;

function listOf(value: string | null, separator: RegExp): string[] {
  return (value ?? '')
    .split(separator)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

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
  // Oauth Authorize reference, `scope`: "A comma-separated list, or URL-encoded space-separated
  // list" (required), of which instagram_business_basic is required.
  const requested = listOf(request.query.get('scope'), /[,\s]/);
  const unknown = requested.filter((scope) => !KNOWN_SCOPES.has(scope));
  if (unknown.length > 0) return text(400, `Invalid Scopes: ${unknown.join(', ')}`);
  if (!requested.includes(REQUIRED_SCOPE)) return text(400, `Invalid Scopes: ${REQUIRED_SCOPE} is required`);
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
  // A browser still logged in to Instagram is not asked who logs in, unless force_reauth=true.
  const session = request.query.get('force_reauth') === 'true' ? undefined : loggedIn.get(state);
  const account =
    session === undefined
      ? state.upsertAccount('instagram', consent.externalAccountId, consent.displayName)
      : state.account('instagram', session)!;
  loggedIn.set(state, account.externalAccountId);
  // The user may switch off any permission but the required one; the code exchange reports what
  // was granted (Business Login for Instagram, "How it works": "a list of permissions the app user
  // granted your app"). The sandbox's user declines with `sim_decline=a,b`.
  const declined = new Set(listOf(request.query.get('sim_decline'), /[,\s]/));
  declined.delete(REQUIRED_SCOPE);
  const code = state.createCode({
    provider: 'instagram',
    clientId: clientId ?? '',
    redirectUri,
    codeChallenge: null,
    codeChallengeMethod: null,
    scopes: requested.filter((scope) => !declined.has(scope)),
    externalAccountId: account.externalAccountId,
    offline: true,
  });
  // Oauth Authorize reference: "we #_ append to the end of the redirect URI"; it is not part of the code.
  return redirect(redirectUrl(redirectUri, { code: code.code, state: stateParam }, '#_'));
}

/**
 * Oauth Access Token reference (POST api.instagram.com/oauth/access_token): client_id,
 * client_secret, code, grant_type=authorization_code and redirect_uri, which "must be the same URI
 * or we will reject the request". Errors come in the Basic Display era's flat shape, HTTP 400.
 */
function shortLivedToken(request: SimRequest, context: RouteContext): SimResponse {
  const { state, settings } = context;
  const form = request.form;
  for (const field of ['client_id', 'client_secret', 'code', 'grant_type', 'redirect_uri']) {
    if (!form.get(field)) return legacyError(`Missing required field: ${field}`);
  }
  if (!state.clientMatches('instagram', form.get('client_id'))) return legacyError('Invalid platform app');
  if (!state.secretMatches('instagram', form.get('client_secret'))) {
    return legacyError('Error validating client secret.');
  }
  if (form.get('grant_type') !== 'authorization_code') return legacyError('Invalid grant_type');
  // Single use, and a code with the redirect's `#_` still on it is not a code Instagram issued.
  const code = state.redeemCode('instagram', form.get('code'));
  if (code === 'used') return legacyError('This authorization code has been used');
  if (code === 'expired') return legacyError('This authorization code has expired');
  if (typeof code === 'string') return legacyError('Matching code was not found or was already used.');
  if (code.redirectUri !== form.get('redirect_uri')) {
    return legacyError(
      'Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request',
    );
  }
  const token = state.issueAccessToken('instagram', code.externalAccountId, {
    scopes: code.scopes,
    lifetimeSeconds: state.lifetimes.instagramShortSeconds,
    instagramKind: 'short',
  });
  // user_id goes out as a bare JSON number ("Integer"), beyond 2^53: clients must not round it.
  const entry = `{"access_token":${JSON.stringify(token.token)},"user_id":${instagramAppScopedId(code.externalAccountId)},"permissions":${JSON.stringify(code.scopes.join(','))}}`;
  // Business Login for Instagram shows the answer wrapped in `data: [...]`; the Oauth Access Token
  // reference shows it flat. Both are served (settings.instagramTokenShape).
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
  const fields = listOf(request.query.get('fields'), /,/);
  if (fields.length === 0) fields.push('id');
  const all: Record<string, string> = {
    // User reference: `id` is the app-scoped id, `user_id` the professional account's; we key on user_id.
    id: instagramAppScopedId(record.externalAccountId),
    user_id: record.externalAccountId,
    username: account?.displayName ?? '',
  };
  return json(200, Object.fromEntries(Object.entries(all).filter(([field]) => fields.includes(field))));
}

/**
 * graph.instagram.com answers carry X-App-Usage once the app has made enough calls (Rate Limits,
 * "Headers"): `{call_count, total_cputime, total_time}` in whole percent.
 */
function withAppUsage(response: SimResponse, { settings }: RouteContext): SimResponse {
  const percent = settings.instagramAppUsagePercent;
  if (percent === null || response.kind === 'redirect') return response;
  const usage = JSON.stringify({ call_count: percent, total_cputime: percent, total_time: percent });
  return { ...response, headers: { ...response.headers, 'x-app-usage': usage } };
}

export const instagramRoutes: PlatformRoutes = {
  provider: 'instagram',
  routeKind(request): RouteKind | null {
    if (request.method === 'GET' && request.path === AUTHORIZE) return 'authorize';
    if (request.method === 'POST' && request.path === SHORT_LIVED) return 'token';
    if (request.method === 'GET' && request.path === LONG_LIVED) return 'token';
    if (request.method === 'GET' && request.path === REFRESH) return 'refresh';
    if (request.method === 'GET' && ME.test(request.path)) return 'profile';
    return null;
  },
  refreshSubject(request, state) {
    return state.findAccessToken('instagram', request.query.get('access_token'))?.externalAccountId ?? null;
  },
  handle(request, context) {
    if (request.path === AUTHORIZE) return authorize(request, context);
    if (request.path === SHORT_LIVED) return shortLivedToken(request, context);
    if (request.path === LONG_LIVED) return withAppUsage(longLivedToken(request, context), context);
    if (request.path === REFRESH) return withAppUsage(refresh(request, context), context);
    if (ME.test(request.path)) return withAppUsage(me(request, context), context);
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
