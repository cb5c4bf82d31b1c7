import { z } from 'zod';
import {
  type OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from '../../domain/errors.js';
import { createS256CodeChallenge } from '../pkce.js';
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
import { nextPacificMidnight } from './quotaReset.js';

// Google OAuth 2.0 for web server apps (developers.google.com/identity/protocols/oauth2/web-server).
export const GOOGLE_AUTHORIZE_URL = 'https://accounts.google.com/o/oauth2/v2/auth';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const GOOGLE_REVOKE_URL = 'https://oauth2.googleapis.com/revoke';
export const YOUTUBE_CHANNELS_URL =
  'https://www.googleapis.com/youtube/v3/channels?part=id,snippet&mine=true';

export const YOUTUBE_CAPABILITIES: ProviderCapabilities = {
  rotatesRefreshToken: false,
  refreshesAccessTokenItself: false,
  minimumTokenAgeForRefreshSeconds: 0,
  // "has not been used for six months": refreshing now and then keeps an idle account alive.
  refreshTokenIdleLifetimeSeconds: 182 * 86_400,
  supportsPkce: true,
  hasRevocationEndpoint: true,
  // "Revoking a token": the refresh token ends the grant; an expired access token is refused.
  revokeWith: 'refresh_token',
  scopeSeparator: ' ',
  // "Using OAuth 2.0 for Web Server Applications": an access token lasts about an hour (expires_in
  // 3599). A refresh token has no fixed end; refresh_token_expires_in comes only with time-limited
  // grants (7 days for apps in Testing). Its maximum is not documented: the idle lifetime (6 months)
  // is used, past which the grant is dead anyway.
  accessTokenLifetime: { maxSeconds: 3600, fallbackSeconds: 1800 },
  refreshTokenLifetime: { maxSeconds: 182 * 86_400, fallbackSeconds: 86_400 },
};

const TOKEN_ANSWER_FIELDS: TokenAnswerFields = {
  // Only sent for time-limited grants (apps in Testing, time-based access): absent is normal.
  refreshTokenLifetime: 'refresh_token_expires_in',
  refreshTokenLifetimeOptional: true,
  externalAccountId: null,
};

const channelsResponseSchema = z.object({
  items: z
    .array(z.object({ id: z.string().min(1), snippet: z.object({ title: z.string().nullish() }).optional() }))
    .optional(),
});

/** The token endpoints' RFC 6749 error. */
const oauthErrorSchema = z.object({ error: z.string().min(1), error_description: z.string().nullish() });

/** The Google APIs' (YouTube Data API) error envelope. */
const apiErrorSchema = z.object({
  error: z.object({
    code: z.number().int().nullish(),
    message: z.string().nullish(),
    status: z.string().nullish(),
    errors: z.array(z.object({ reason: z.string().nullish() })).nullish(),
  }),
});

const REAUTHORIZE_CODES = new Set([
  // Revoked, expired (6 months idle, 7 days in Testing), 100-token limit, password reset: all look alike.
  'invalid_grant',
  'invalid_token',
  'admin_policy_enforced',
  // APIs: the access token is dead or lacks a scope. Nothing refreshes and retries on these today
  // (the profile is read only with a token just issued); a caller holding an older token retries
  // once after a forced refresh (the publishing contract's refreshAfterAuthFailure).
  'authError',
  'UNAUTHENTICATED',
  'insufficientPermissions',
  'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
]);
const CONFIG_CODES = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_request',
  'unsupported_grant_type',
  'invalid_scope',
  'redirect_uri_mismatch',
  'org_internal',
  'deleted_client',
]);
const RATE_LIMIT_CODES = new Set(['rateLimitExceeded', 'userRateLimitExceeded', 'RESOURCE_EXHAUSTED']);
/**
 * The project's daily quota is spent: nothing works until it resets, at midnight Pacific Time
 * (YouTube Data API, "Quota costs": "Daily quotas reset at midnight Pacific Time (PT)"). Retrying
 * sooner only spends calls (and every request, failed ones included, costs quota).
 */
const DAILY_QUOTA_CODES = new Set(['quotaExceeded', 'dailyLimitExceeded']);

const TRANSIENT_CODES = new Set(['internal_failure', 'backendError', 'internalError', 'UNAVAILABLE']);

export function classifyGoogleError(
  status: number,
  body: unknown,
  headers: AnswerHeaders,
  nowMs: number,
): OAuthProviderError {
  const { code, description } = readGoogleErrorCode(body);
  const details = {
    provider: 'youtube' as const,
    providerErrorCode: code,
    providerErrorDescription: description,
    httpStatus: status,
  };
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'), nowMs);

  if (code !== null) {
    if (REAUTHORIZE_CODES.has(code))
      return new ReauthorizationRequired(`Google rejected the grant (${code})`, details);
    if (CONFIG_CODES.has(code))
      return new ProviderConfigError(`Google rejected our client (${code})`, details);
    if (DAILY_QUOTA_CODES.has(code)) {
      const untilReset = nextPacificMidnight(nowMs) - nowMs;
      return new RateLimited(`YouTube daily quota exhausted (${code}); it resets at midnight Pacific`, {
        ...details,
        retryAfterMs: Math.max(untilReset, retryAfterMs ?? 0),
      });
    }
    if (RATE_LIMIT_CODES.has(code))
      return new RateLimited(`Google rate limit (${code})`, { ...details, retryAfterMs });
    if (TRANSIENT_CODES.has(code))
      return new TransientProviderError(`Google is unavailable (${code})`, details);
  }
  if (status === 429) return new RateLimited('Google rate limit', { ...details, retryAfterMs });
  if (status >= 500 || status === 408)
    return new TransientProviderError(`Google answered ${status}`, details);
  return new ProviderResponseInvalid(`Google answered ${status} with an unrecognised error`, details);
}

function readGoogleErrorCode(body: unknown): { code: string | null; description: string | null } {
  const oauth = oauthErrorSchema.safeParse(body);
  if (oauth.success) return { code: oauth.data.error, description: oauth.data.error_description ?? null };
  const api = apiErrorSchema.safeParse(body);
  if (api.success) {
    // The specific reason (quotaExceeded, insufficientPermissions) says more than the status name.
    const reason = api.data.error.errors?.find((e) => e.reason)?.reason ?? null;
    return { code: reason ?? api.data.error.status ?? null, description: api.data.error.message ?? null };
  }
  return { code: null, description: null };
}

function isSuccess(answer: ProviderAnswer): boolean {
  return answer.status >= 200 && answer.status < 300;
}

export class YouTubeProvider implements Provider {
  readonly name = 'youtube' as const;
  readonly capabilities = YOUTUBE_CAPABILITIES;
  // Uploading needs youtube.upload; reading one's own channel (channels.list?mine=true, the profile)
  // needs youtube.readonly, since youtube.upload alone cannot. The full `youtube` scope (manage
  // the whole account) is more than either needs, and a sensitive scope users are warned about.
  readonly defaultScopes = [
    'https://www.googleapis.com/auth/youtube.upload',
    'https://www.googleapis.com/auth/youtube.readonly',
  ] as const;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly http: ProviderHttpOptions,
  ) {}

  createAuthorizationUrl(input: AuthorizationUrlInput): URL {
    const url = resolveEndpoint(this.settings.baseUrl, GOOGLE_AUTHORIZE_URL);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('redirect_uri', this.requireRedirectUri());
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', input.scopes.join(this.capabilities.scopeSeparator));
    url.searchParams.set('state', input.state);
    // Without both, Google returns a refresh token only on the very first consent, and a reconnect
    // would leave us with an access token that dies in an hour.
    url.searchParams.set('access_type', 'offline');
    url.searchParams.set('prompt', 'consent');
    url.searchParams.set('include_granted_scopes', 'true');
    if (input.codeVerifier !== null) {
      url.searchParams.set('code_challenge', createS256CodeChallenge(input.codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
    }
    return url;
  }

  async exchangeAuthorizationCode(code: string, codeVerifier: string | null): Promise<ProviderTokens> {
    const form: Record<string, string> = {
      code,
      client_id: this.settings.clientId,
      client_secret: this.settings.clientSecret,
      redirect_uri: this.requireRedirectUri(),
      grant_type: 'authorization_code',
    };
    if (codeVerifier !== null) form.code_verifier = codeVerifier;
    const label = 'Google code exchange';
    const { tokens, status } = await this.requestTokens(form, label);
    if (tokens.accessToken === null) {
      throw new ProviderResponseInvalid(`${label} answered with an unexpected body (fields: access_token)`, {
        provider: this.name,
        httpStatus: status,
      });
    }
    return { ...tokens, accessToken: tokens.accessToken };
  }

  async refreshAccessToken(input: RefreshInput): Promise<RefreshedTokens> {
    if (input.refreshToken === null) {
      throw new ReauthorizationRequired('No Google refresh token is stored', { provider: this.name });
    }
    const { tokens } = await this.requestTokens(
      {
        grant_type: 'refresh_token',
        refresh_token: input.refreshToken,
        client_id: this.settings.clientId,
        client_secret: this.settings.clientSecret,
      },
      'Google token refresh',
    );
    return tokens;
  }

  /**
   * A live token of either kind revokes the whole grant (access and refresh); an expired access
   * token is answered 400 invalid_token and ends nothing (web server apps, "Revoking a token").
   */
  async revokeToken(token: string): Promise<void> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, GOOGLE_REVOKE_URL),
      form: { token },
      label: 'Google revoke endpoint',
    });
    if (isSuccess(answer)) return;
    // 400 invalid_token: expired or already revoked. Not a success: an expired access token's
    // refresh token is still alive.
    throw classifyGoogleError(answer.status, answer.json, answer.headers, Date.now());
  }

  async fetchProfile(accessToken: string): Promise<ProviderProfile> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'GET',
      url: resolveEndpoint(this.settings.baseUrl, YOUTUBE_CHANNELS_URL),
      bearerToken: accessToken,
      label: 'YouTube channels endpoint',
    });
    if (!isSuccess(answer)) throw classifyGoogleError(answer.status, answer.json, answer.headers, Date.now());
    const body = parseSuccessBody(this.name, channelsResponseSchema, answer, 'YouTube channels endpoint');
    const channel = body.items?.[0];
    if (channel === undefined) {
      // A Google account without a YouTube channel: nothing to publish to until the user creates one
      // and connects again.
      throw new ReauthorizationRequired('The Google account has no YouTube channel', {
        provider: this.name,
        providerErrorCode: 'youtube_channel_not_found',
        httpStatus: answer.status,
      });
    }
    return { externalAccountId: channel.id, displayName: channel.snippet?.title ?? null };
  }

  private async requestTokens(
    form: Record<string, string>,
    label: string,
  ): Promise<{ tokens: RefreshedTokens; status: number }> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, GOOGLE_TOKEN_URL),
      form,
      label,
    });
    if (!isSuccess(answer)) throw classifyGoogleError(answer.status, answer.json, answer.headers, Date.now());
    // An error envelope with a 2xx is still an error (Google documents none, but a proxy may).
    if (oauthErrorSchema.safeParse(answer.json).success)
      throw classifyGoogleError(answer.status, answer.json, answer.headers, Date.now());
    // refresh_token is null on refresh: the stored one stays valid (Google does not rotate).
    const tokens = readTokenAnswer(this.name, this.capabilities, answer, TOKEN_ANSWER_FIELDS, label);
    return { tokens, status: answer.status };
  }

  private requireRedirectUri(): string {
    if (this.settings.redirectUri === null) {
      throw new ProviderConfigError('YouTube redirect URI is not configured', { provider: this.name });
    }
    return this.settings.redirectUri;
  }
}
