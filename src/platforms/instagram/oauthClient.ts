import { z } from 'zod';
import {
  type OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from '../../domain/errors.js';
import { settleLifetime } from '../../domain/tokenLifetime.js';
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
  parseJsonOrUndefined,
  parseRetryAfter,
  parseSuccessBody,
  resolveEndpoint,
  sendProviderRequest,
} from '../providerHttp.js';
import { splitScopes } from '../scopes.js';
import { readTokenAnswer, type TokenAnswerFields } from '../tokenAnswer.js';

// Instagram API with Instagram Login (developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login).
export const INSTAGRAM_AUTHORIZE_URL = 'https://www.instagram.com/oauth/authorize';
export const INSTAGRAM_SHORT_LIVED_TOKEN_URL = 'https://api.instagram.com/oauth/access_token';
export const INSTAGRAM_LONG_LIVED_TOKEN_URL = 'https://graph.instagram.com/access_token';
export const INSTAGRAM_REFRESH_URL = 'https://graph.instagram.com/refresh_access_token';
const INSTAGRAM_GRAPH_HOST = 'https://graph.instagram.com';

/**
 * The Graph API version our node calls (/me) name, as every example in Meta's reference does
 * (Instagram Platform reference, "Me": `GET https://graph.instagram.com/v26.0/me`). Unversioned
 * calls are served by the oldest version still available (Graph API "Versioning"), which changes
 * under us without notice; a pinned one changes when we decide. v26.0 is the newest (Graph API
 * changelog, 29 July 2026). The token endpoints (/access_token, /refresh_access_token) are
 * documented without a version and are called that way.
 */
export const INSTAGRAM_DEFAULT_GRAPH_VERSION = 'v26.0';
export const INSTAGRAM_GRAPH_VERSION_PATTERN = /^v\d+\.\d+$/;

/** `/me` under the pinned version: `user_id` is the professional account's id, which we key on. */
export function instagramProfileUrl(graphVersion: string): string {
  return `${INSTAGRAM_GRAPH_HOST}/${graphVersion}/me?fields=user_id,username`;
}

export const INSTAGRAM_CAPABILITIES: ProviderCapabilities = {
  rotatesRefreshToken: false,
  // No refresh token: a long-lived access token is exchanged for a new one, and once it has expired
  // nothing can bring it back. Idle accounts must be refreshed before day 60.
  refreshesAccessTokenItself: true,
  // "at least 24 hours old but has not expired" (Refresh a long-lived token).
  minimumTokenAgeForRefreshSeconds: 86_400,
  refreshTokenIdleLifetimeSeconds: null,
  supportsPkce: false,
  hasRevocationEndpoint: false,
  scopeSeparator: ',',
  // Content Publishing with Instagram Login: `video_url` only ("Instagram API with Instagram Login",
  // Content Publishing); the resumable byte upload is documented for Facebook Login apps alone.
  publishesFromPublicUrl: true,
  // "Refresh a long-lived token": the refreshed token is valid for 60 days. When an answer's
  // lifetime is unusable, 7 days: past the 24-hour minimum age, so the keep-alive can still
  // refresh it, and well before day 60 (an expired Instagram token cannot be brought back).
  accessTokenLifetime: { maxSeconds: 60 * 86_400, fallbackSeconds: 7 * 86_400 },
  refreshTokenLifetime: null,
};

const REFRESH_ANSWER_FIELDS: TokenAnswerFields = {
  refreshTokenLifetime: 'refresh_expires_in',
  refreshTokenLifetimeOptional: true,
  externalAccountId: null,
};

/** user_id arrives as a JSON number, but Instagram ids (1784…, 17 digits) exceed 2^53. */
const userIdSchema = z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).transform(String);

/** permissions has been documented both as "a,b" and as ["a","b"]. */
const permissionsSchema = z.union([z.string(), z.array(z.string())]).optional();

const shortLivedTokenSchema = z.object({
  access_token: z.string().min(1),
  user_id: userIdSchema,
  permissions: permissionsSchema,
});

/** Seen both flat and wrapped in `data: [...]`: accept both, as one shape. */
const shortLivedTokenResponseSchema = z.union([
  shortLivedTokenSchema,
  z
    .object({ data: z.tuple([shortLivedTokenSchema], shortLivedTokenSchema) })
    .transform((body) => body.data[0]),
]);

const longLivedTokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  // Read by settleLifetime: an odd value is replaced, not a reason to drop the token.
  expires_in: z.unknown(),
  permissions: permissionsSchema,
});

const profileSchema = z.object({ user_id: userIdSchema, username: z.string().nullish() });

/** The Graph API's error envelope. */
const graphErrorSchema = z.object({
  error: z.object({
    message: z.string().nullish(),
    type: z.string().nullish(),
    code: z.number().int(),
    error_subcode: z.number().int().nullish(),
    fbtrace_id: z.string().nullish(),
  }),
});

/** api.instagram.com (the code exchange) still answers in the Basic Display era's flat shape. */
const legacyErrorSchema = z.object({
  error_type: z.string(),
  code: z.number().int().nullish(),
  error_message: z.string().nullish(),
});

/**
 * 4, 17, 32, 613: Handling Errors, "Error Codes"; 80002: the Business Use Case throttle of the
 * Instagram Platform (Rate Limits, "Business Use Case Rate Limits", error codes 80000–80014 by use
 * case), which Instagram API with Instagram Login calls are subject to.
 */
const THROTTLING_CODES = new Set([4, 17, 32, 613, 80002]);
const TRANSIENT_CODES = new Set([1, 2]);
/** "Error validating client secret", "Invalid platform app", "Invalid redirect_uri", … */
const CLIENT_CONFIG_MESSAGE = /client secret|client_secret|client_id|platform app|redirect_uri/i;

/**
 * Graph error codes (developers.facebook.com/docs/graph-api/guides/error-handling): 190 is a dead
 * token whatever the subcode (458 app removed, 459 checkpoint, 460 password changed, 463 expired,
 * 467 invalid); 10 and 200–299 are a permission the user did not grant; 1 and 2 are Meta's own
 * trouble; 4, 17, 32, 613 are throttling.
 */
export function classifyInstagramError(
  status: number,
  body: unknown,
  headers: AnswerHeaders,
  nowMs: number,
): OAuthProviderError {
  const graph = graphErrorSchema.safeParse(body);
  if (graph.success) {
    const { code, error_subcode: subcode, message } = graph.data.error;
    const details = {
      provider: 'instagram' as const,
      providerErrorCode: subcode ? `${code}/${subcode}` : String(code),
      providerErrorDescription: message ?? null,
      httpStatus: status,
    };
    // Meta tells a wrong secret or app id apart only in the message, under code 100 (Instagram
    // Graph) or 1 (Facebook): without this check it would pass for a transient or unknown error.
    if ((code === 100 || code === 1) && CLIENT_CONFIG_MESSAGE.test(message ?? '')) {
      return new ProviderConfigError('Instagram rejected our app settings', details);
    }
    if (code === 190) return new ReauthorizationRequired('Instagram token is no longer valid', details);
    if (code === 10 || (code >= 200 && code <= 299)) {
      return new ReauthorizationRequired('Instagram permission is missing', details);
    }
    if (TRANSIENT_CODES.has(code)) return new TransientProviderError('Instagram is unavailable', details);
    if (THROTTLING_CODES.has(code)) {
      return new RateLimited('Instagram is throttling this app', {
        ...details,
        retryAfterMs: instagramRetryAfterMs(headers, nowMs),
      });
    }
    return fallback(status, headers, nowMs, details);
  }

  const legacy = legacyErrorSchema.safeParse(body);
  if (legacy.success) {
    const details = {
      provider: 'instagram' as const,
      providerErrorCode: legacy.data.error_type,
      providerErrorDescription: legacy.data.error_message ?? null,
      httpStatus: status,
    };
    // This shape carries no machine-readable reason, only the type (always OAuthException) and a
    // message. Client and redirect problems are ours; anything else means the code is invalid,
    // used or expired, and only a new consent yields a new one.
    if (CLIENT_CONFIG_MESSAGE.test(legacy.data.error_message ?? '')) {
      return new ProviderConfigError('Instagram rejected our app settings', details);
    }
    if (status >= 500) return new TransientProviderError(`Instagram answered ${status}`, details);
    return new ReauthorizationRequired('Instagram rejected the authorization code', details);
  }

  return fallback(status, headers, nowMs, { provider: 'instagram', httpStatus: status });
}

function fallback(
  status: number,
  headers: AnswerHeaders,
  nowMs: number,
  details: {
    provider: 'instagram';
    httpStatus: number;
    providerErrorCode?: string;
    providerErrorDescription?: string | null;
  },
): OAuthProviderError {
  if (status === 429) {
    return new RateLimited('Instagram rate limit', {
      ...details,
      retryAfterMs: instagramRetryAfterMs(headers, nowMs),
    });
  }
  if (status >= 500 || status === 408)
    return new TransientProviderError(`Instagram answered ${status}`, details);
  return new ProviderResponseInvalid(`Instagram answered ${status} with an unrecognised error`, details);
}

/**
 * Meta rarely sends Retry-After; X-Business-Use-Case-Usage says, per business id, how many minutes
 * until access comes back (`estimated_time_to_regain_access`). The largest one is the wait.
 */
function instagramRetryAfterMs(headers: AnswerHeaders, nowMs: number): number | null {
  const retryAfter = parseRetryAfter(headers.get('retry-after'), nowMs);
  if (retryAfter !== null) return retryAfter;
  const usage = parseJsonOrUndefined(headers.get('x-business-use-case-usage') ?? '');
  if (typeof usage !== 'object' || usage === null) return null;
  let minutes: number | null = null;
  for (const entries of Object.values(usage)) {
    if (!Array.isArray(entries)) continue;
    for (const entry of entries) {
      const value = (entry as { estimated_time_to_regain_access?: unknown }).estimated_time_to_regain_access;
      if (typeof value === 'number' && value > 0) minutes = Math.max(minutes ?? 0, value);
    }
  }
  return minutes === null ? null : minutes * 60_000;
}

/**
 * Parses a body with `user_id` kept as a string: `JSON.parse` would round 17841405822304914 to
 * 17841405822304916 and we would store someone else's id.
 */
export function parseInstagramJson(text: string): unknown {
  return parseJsonOrUndefined(text.replace(/("user_id"\s*:\s*)(\d+)/g, '$1"$2"'));
}

function isError(status: number, body: unknown): boolean {
  return (
    status < 200 ||
    status >= 300 ||
    graphErrorSchema.safeParse(body).success ||
    legacyErrorSchema.safeParse(body).success
  );
}

export class InstagramProvider implements Provider {
  readonly name = 'instagram' as const;
  readonly capabilities = INSTAGRAM_CAPABILITIES;
  readonly defaultScopes = ['instagram_business_basic', 'instagram_business_content_publish'] as const;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly http: ProviderHttpOptions,
  ) {}

  createAuthorizationUrl(input: AuthorizationUrlInput): URL {
    const url = resolveEndpoint(this.settings.baseUrl, INSTAGRAM_AUTHORIZE_URL);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('redirect_uri', this.requireRedirectUri());
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', input.scopes.join(this.capabilities.scopeSeparator));
    url.searchParams.set('state', input.state);
    // Business Login for Instagram, "Step 1. Get authorization", query parameter `force_reauth`:
    // without it the authorization window binds whichever Instagram account the browser is logged
    // in to, silently. A reconnect must be able to pick the account it means, and at this point a
    // connect cannot be told from a reconnect (the portal's Reconnect and the API start the same
    // flow; the account is known only after the code exchange), so every connect asks for a login.
    url.searchParams.set('force_reauth', 'true');
    // No PKCE: the Instagram authorize endpoint does not document code_challenge.
    return url;
  }

  /**
   * Two steps, because a short-lived token (1 hour) is useless to a service that keeps accounts for
   * months: the code buys a short-lived token, which is swapped at once for a 60-day one.
   */
  async exchangeAuthorizationCode(code: string, _codeVerifier: string | null): Promise<ProviderTokens> {
    const shortLived = await this.send(
      {
        method: 'POST',
        url: resolveEndpoint(this.settings.baseUrl, INSTAGRAM_SHORT_LIVED_TOKEN_URL),
        form: {
          client_id: this.settings.clientId,
          client_secret: this.settings.clientSecret,
          grant_type: 'authorization_code',
          redirect_uri: this.requireRedirectUri(),
          // The redirect appends `#_` to the code; it is not part of it.
          code: code.replace(/#_$/, ''),
        },
      },
      shortLivedTokenResponseSchema,
      'Instagram code exchange',
    );

    const longLivedUrl = resolveEndpoint(this.settings.baseUrl, INSTAGRAM_LONG_LIVED_TOKEN_URL);
    // The platform's contract puts the secret and token in the query of a GET; nothing else works.
    longLivedUrl.searchParams.set('grant_type', 'ig_exchange_token');
    longLivedUrl.searchParams.set('client_secret', this.settings.clientSecret);
    longLivedUrl.searchParams.set('access_token', shortLived.access_token);
    const longLived = await this.send(
      { method: 'GET', url: longLivedUrl },
      longLivedTokenSchema,
      'Instagram long-lived token exchange',
    );

    // The lifetime within what Meta documents (60 days), like every refresh answer's.
    const lifetime = settleLifetime(
      'expires_in',
      longLived.expires_in,
      this.capabilities.accessTokenLifetime,
    );
    return {
      accessToken: longLived.access_token,
      refreshToken: null,
      expiresInSeconds: lifetime.seconds,
      lifetimeNotes: lifetime.note ? [lifetime.note] : [],
      refreshTokenExpiresInSeconds: null,
      scopes: readPermissions(longLived.permissions ?? shortLived.permissions),
      externalAccountId: shortLived.user_id,
    };
  }

  async refreshAccessToken(input: RefreshInput): Promise<RefreshedTokens> {
    if (input.accessToken === null) {
      throw new ReauthorizationRequired('No Instagram access token is stored', { provider: this.name });
    }
    const url = resolveEndpoint(this.settings.baseUrl, INSTAGRAM_REFRESH_URL);
    url.searchParams.set('grant_type', 'ig_refresh_token');
    url.searchParams.set('access_token', input.accessToken);
    const label = 'Instagram token refresh';
    const answer = await sendProviderRequest(this.name, this.http, { method: 'GET', url, label });
    const json = parseInstagramJson(answer.text);
    if (isError(answer.status, json))
      throw classifyInstagramError(answer.status, json, answer.headers, Date.now());
    // The new token is the whole grant (there is no refresh token): kept whatever its lifetime says.
    const tokens = readTokenAnswer(
      this.name,
      this.capabilities,
      { status: answer.status, json },
      REFRESH_ANSWER_FIELDS,
      label,
    );
    const permissions = permissionsSchema.safeParse((json as { permissions?: unknown }).permissions);
    return {
      ...tokens,
      // Instagram has no refresh token; a stray field is not one.
      refreshToken: null,
      refreshTokenExpiresInSeconds: null,
      scopes: permissions.success ? readPermissions(permissions.data) : null,
    };
  }

  async revokeToken(_token: string): Promise<void> {
    throw new ProviderConfigError('Instagram has no token revocation endpoint', { provider: this.name });
  }

  async fetchProfile(accessToken: string): Promise<ProviderProfile> {
    const body = await this.send(
      {
        method: 'GET',
        url: resolveEndpoint(
          this.settings.baseUrl,
          instagramProfileUrl(this.settings.apiVersion ?? INSTAGRAM_DEFAULT_GRAPH_VERSION),
        ),
        bearerToken: accessToken,
      },
      profileSchema,
      'Instagram profile endpoint',
    );
    return { externalAccountId: body.user_id, displayName: body.username ?? null };
  }

  private async send<Schema extends z.ZodType>(
    request: { method: 'GET' | 'POST'; url: URL; form?: Record<string, string>; bearerToken?: string },
    schema: Schema,
    label: string,
  ): Promise<z.output<Schema>> {
    const answer = await sendProviderRequest(this.name, this.http, { ...request, label });
    // Success or not, the usage headers (X-App-Usage, X-Business-Use-Case-Usage) reach the outbound
    // gate through http.observeAnswer, which slows us down before code 4 or 80002
    // (readInstagramUsageHint in ../rateLimitHints.ts).
    const json = parseInstagramJson(answer.text);
    if (isError(answer.status, json))
      throw classifyInstagramError(answer.status, json, answer.headers, Date.now());
    return parseSuccessBody(this.name, schema, { status: answer.status, json }, label);
  }

  private requireRedirectUri(): string {
    if (this.settings.redirectUri === null) {
      throw new ProviderConfigError('Instagram redirect URI is not configured', { provider: this.name });
    }
    return this.settings.redirectUri;
  }
}

function readPermissions(permissions: string | string[] | undefined): string[] | null {
  if (permissions === undefined) return null;
  return Array.isArray(permissions) ? permissions : splitScopes(permissions, ',');
}
