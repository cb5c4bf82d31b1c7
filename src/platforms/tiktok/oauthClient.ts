import { z } from 'zod';
import {
  type OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from '../../domain/errors.js';
import { createS256HexCodeChallenge } from '../pkce.js';
import type {
  AuthorizationUrlInput,
  Provider,
  ProviderCapabilities,
  ProviderHttpOptions,
  ProviderProfile,
  ProviderSettings,
  ProviderTokens,
  RefreshedTokens,
  RefreshInput,
} from '../provider.js';
import {
  type AnswerHeaders,
  type ProviderAnswer,
  parseRetryAfter,
  parseSuccessBody,
  resolveEndpoint,
  sendProviderRequest,
} from '../providerHttp.js';
import { readTokenAnswer, type TokenAnswerFields } from '../tokenAnswer.js';

// TikTok Login Kit v2 (developers.tiktok.com/doc/oauth-user-access-token-management).
export const TIKTOK_AUTHORIZE_URL = 'https://www.tiktok.com/v2/auth/authorize/';
export const TIKTOK_TOKEN_URL = 'https://open.tiktokapis.com/v2/oauth/token/';
export const TIKTOK_REVOKE_URL = 'https://open.tiktokapis.com/v2/oauth/revoke/';
export const TIKTOK_USER_INFO_URL =
  'https://open.tiktokapis.com/v2/user/info/?fields=open_id,union_id,avatar_url,display_name';

export const TIKTOK_CAPABILITIES: ProviderCapabilities = {
  // Each refresh spends the refresh token it used: two concurrent refreshes lose the account.
  rotatesRefreshToken: true,
  refreshesAccessTokenItself: false,
  minimumTokenAgeForRefreshSeconds: 0,
  // The lifetime comes in every response (refresh_expires_in); nothing documents an idle rule.
  refreshTokenIdleLifetimeSeconds: null,
  supportsPkce: true,
  hasRevocationEndpoint: true,
  // Revoke a User Access Token: `token` is "the user access token to revoke".
  revokeWith: 'access_token',
  scopeSeparator: ',',
  // "Manage OAuth Access Tokens" (2026-11): access 2 hours, refresh 180 days; the older "Fetch an
  // access token" page: 24 hours and 365 days. Clamped to the longer; when unusable, a guess below
  // the shorter (an early refresh costs one call, a late one the account).
  accessTokenLifetime: { maxSeconds: 24 * 3600, fallbackSeconds: 3600 },
  refreshTokenLifetime: { maxSeconds: 365 * 86_400, fallbackSeconds: 30 * 86_400 },
};

const TOKEN_ANSWER_FIELDS: TokenAnswerFields = {
  refreshTokenLifetime: 'refresh_expires_in',
  refreshTokenLifetimeOptional: false,
  externalAccountId: 'open_id',
};

const userInfoResponseSchema = z.object({
  data: z.object({
    user: z.object({
      open_id: z.string().min(1),
      display_name: z.string().nullish(),
    }),
  }),
});

const oauthErrorBodySchema = z.object({
  error: z.string().min(1),
  error_description: z.string().nullish(),
  log_id: z.string().nullish(),
});

const apiErrorBodySchema = z.object({
  error: z.object({ code: z.string().min(1), message: z.string().nullish(), log_id: z.string().nullish() }),
});

/**
 * Codes of the OAuth endpoints ({error, error_description, log_id}: "OAuth Error Handling") and of
 * the other APIs ({error: {code, message, log_id}}: "TikTok API v2 Error Handling"), each read as
 * the page describes it.
 */
const REAUTHORIZE_CODES = new Set([
  // "invalid, expired, revoked, does not match the redirection URI used in the authorization
  // request, or was issued to another client": a redirect-URI mismatch at code exchange is here.
  'invalid_grant',
  // "The resource owner or authorization server denied the request."
  'access_denied',
  // APIs: "The user did not authorize the scope required ... ask the user to authorize" (401);
  // "some fields need additional scopes"; "The access token is invalid ... refresh the token and
  // retry" (401): the service refreshes once before treating it as final (the code is kept).
  'scope_not_authorized',
  'scope_permission_missed',
  'access_token_invalid',
  'invalid_token',
]);
const CONFIG_CODES = new Set([
  // "Client authentication failed" / "not authorized to request an authorization code".
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'unsupported_response_type',
  // "misses a required parameter or is otherwise malformed" (TikTok also answers a PKCE mismatch so).
  'invalid_request',
  'invalid_scope',
  // APIs: "One or more fields in request is invalid" (400).
  'invalid_params',
]);
const RATE_LIMIT_CODES = new Set(['rate_limit_exceeded']);
const TRANSIENT_CODES = new Set(['server_error', 'temporarily_unavailable', 'internal_error']);

/**
 * TikTok's status codes are not documented for OAuth errors (some arrive with 200), so the body's
 * own code decides whenever there is one, and the status only when there is none.
 */
export function classifyTikTokError(
  status: number,
  body: unknown,
  headers: AnswerHeaders,
  nowMs: number,
): OAuthProviderError {
  const { code, description } = readTikTokErrorCode(body);
  const details = {
    provider: 'tiktok' as const,
    providerErrorCode: code,
    providerErrorDescription: description,
    httpStatus: status,
  };
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'), nowMs);

  if (code !== null) {
    if (REAUTHORIZE_CODES.has(code))
      return new ReauthorizationRequired(`TikTok rejected the grant (${code})`, details);
    if (CONFIG_CODES.has(code))
      return new ProviderConfigError(`TikTok rejected our client (${code})`, details);
    if (RATE_LIMIT_CODES.has(code))
      return new RateLimited('TikTok rate limit exceeded', { ...details, retryAfterMs });
    if (TRANSIENT_CODES.has(code))
      return new TransientProviderError(`TikTok is unavailable (${code})`, details);
  }
  if (status === 429) return new RateLimited('TikTok rate limit exceeded', { ...details, retryAfterMs });
  if (status >= 500 || status === 408)
    return new TransientProviderError(`TikTok answered ${status}`, details);
  return new ProviderResponseInvalid(`TikTok answered ${status} with an unrecognised error`, details);
}

function readTikTokErrorCode(body: unknown): { code: string | null; description: string | null } {
  const oauth = oauthErrorBodySchema.safeParse(body);
  if (oauth.success) return { code: oauth.data.error, description: oauth.data.error_description ?? null };
  const api = apiErrorBodySchema.safeParse(body);
  if (api.success) return { code: api.data.error.code, description: api.data.error.message ?? null };
  return { code: null, description: null };
}

/** An OAuth endpoint answered with an error, whatever its status: `{error: "invalid_grant", …}`. */
function isOAuthError(answer: ProviderAnswer): boolean {
  return answer.status < 200 || answer.status >= 300 || oauthErrorBodySchema.safeParse(answer.json).success;
}

/** A v2 API answered with an error: anything but `error.code === "ok"`. */
function isApiError(answer: ProviderAnswer): boolean {
  if (answer.status < 200 || answer.status >= 300) return true;
  const api = apiErrorBodySchema.safeParse(answer.json);
  return api.success && api.data.error.code !== 'ok';
}

export class TikTokProvider implements Provider {
  readonly name = 'tiktok' as const;
  readonly capabilities = TIKTOK_CAPABILITIES;
  readonly defaultScopes = ['user.info.basic', 'video.upload', 'video.publish'] as const;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly http: ProviderHttpOptions,
  ) {}

  createAuthorizationUrl(input: AuthorizationUrlInput): URL {
    const url = resolveEndpoint(this.settings.baseUrl, TIKTOK_AUTHORIZE_URL);
    // TikTok names the client id `client_key`, everywhere.
    url.searchParams.set('client_key', this.settings.clientId);
    url.searchParams.set('scope', input.scopes.join(this.capabilities.scopeSeparator));
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('redirect_uri', this.requireRedirectUri());
    url.searchParams.set('state', input.state);
    if (input.codeVerifier !== null) {
      // TikTok's S256 is hex, not RFC 7636's base64url (see pkce.ts).
      url.searchParams.set('code_challenge', createS256HexCodeChallenge(input.codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
    }
    return url;
  }

  async exchangeAuthorizationCode(code: string, codeVerifier: string | null): Promise<ProviderTokens> {
    const form: Record<string, string> = {
      client_key: this.settings.clientId,
      client_secret: this.settings.clientSecret,
      code,
      grant_type: 'authorization_code',
      redirect_uri: this.requireRedirectUri(),
    };
    if (codeVerifier !== null) form.code_verifier = codeVerifier;
    const label = 'TikTok code exchange';
    const { tokens, status } = await this.requestTokens(form, label);
    // A new grant must be whole: without its refresh token or open_id there is nothing to keep.
    const missing = [
      tokens.accessToken === null ? 'access_token' : null,
      tokens.refreshToken === null ? 'refresh_token' : null,
      tokens.externalAccountId === null ? 'open_id' : null,
    ].filter((field) => field !== null);
    if (missing.length > 0 || tokens.accessToken === null) {
      throw new ProviderResponseInvalid(
        `${label} answered with an unexpected body (fields: ${missing.join(', ')})`,
        {
          provider: this.name,
          httpStatus: status,
        },
      );
    }
    return { ...tokens, accessToken: tokens.accessToken };
  }

  async refreshAccessToken(input: RefreshInput): Promise<RefreshedTokens> {
    if (input.refreshToken === null) {
      throw new ReauthorizationRequired('No TikTok refresh token is stored', { provider: this.name });
    }
    const { tokens } = await this.requestTokens(
      {
        client_key: this.settings.clientId,
        client_secret: this.settings.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: input.refreshToken,
      },
      'TikTok token refresh',
    );
    return tokens;
  }

  async revokeToken(token: string): Promise<void> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, TIKTOK_REVOKE_URL),
      form: { client_key: this.settings.clientId, client_secret: this.settings.clientSecret, token },
      label: 'TikTok revoke endpoint',
    });
    if (!isOAuthError(answer)) return;
    // An expired or already revoked token is refused and revokes nothing: the grant may well live
    // on (an expired access token's refresh token still works), so that is never a success.
    throw classifyTikTokError(answer.status, answer.json, answer.headers, Date.now());
  }

  async fetchProfile(accessToken: string): Promise<ProviderProfile> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'GET',
      url: resolveEndpoint(this.settings.baseUrl, TIKTOK_USER_INFO_URL),
      bearerToken: accessToken,
      label: 'TikTok user info endpoint',
    });
    if (isApiError(answer)) throw classifyTikTokError(answer.status, answer.json, answer.headers, Date.now());
    const body = parseSuccessBody(this.name, userInfoResponseSchema, answer, 'TikTok user info endpoint');
    return { externalAccountId: body.data.user.open_id, displayName: body.data.user.display_name ?? null };
  }

  private async requestTokens(
    form: Record<string, string>,
    label: string,
  ): Promise<{ tokens: RefreshedTokens; status: number }> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, TIKTOK_TOKEN_URL),
      form,
      label,
    });
    // TikTok sends OAuth errors with 200; the other APIs' envelope ({error: {code}}) on a 2xx is
    // an error too, never an unreadable success.
    if (isOAuthError(answer) || isApiError(answer))
      throw classifyTikTokError(answer.status, answer.json, answer.headers, Date.now());
    // Lifetimes change between TikTok's doc versions (24 h / 2 h): the answer's own values are
    // used, within the documented limits; one odd field never costs the rotated refresh token.
    const tokens = readTokenAnswer(this.name, this.capabilities, answer, TOKEN_ANSWER_FIELDS, label);
    return { tokens, status: answer.status };
  }

  private requireRedirectUri(): string {
    if (this.settings.redirectUri === null) {
      throw new ProviderConfigError('TikTok redirect URI is not configured', { provider: this.name });
    }
    return this.settings.redirectUri;
  }
}
