import type { ProviderName } from '../domain/providerName.js';
import type { RouteKind } from './faults.js';
import type { Consent, SimulatorState } from './state.js';
import type { UploadRoutes } from './uploads.js';
import type { SimRequest, SimResponse } from './wire.js';

/** Knobs a test may turn while the simulator runs, to meet a platform's less common answers. */
export interface SimulatorSettings {
  /** TikTok does not document the status of OAuth errors; some arrive as 200. Default 200. */
  tiktokOAuthErrorStatus: number;
  /** Instagram's code exchange has been seen flat and wrapped in `data: [...]`. Default 'wrapped'. */
  instagramTokenShape: 'wrapped' | 'flat';
  /**
   * The Google client's publishing status. 'testing': refresh tokens come with
   * refresh_token_expires_in (7 days), refreshing does not extend it, then invalid_grant
   * ("Using OAuth 2.0 to Access Google APIs", Refresh token expiration). Default 'production'.
   */
  googlePublishingStatus: 'production' | 'testing';
  /**
   * TikTok answers with x-ratelimit-limit / -remaining / -reset (epoch seconds) on the OAuth
   * endpoints and 429 rate_limit_exceeded past the limit. TikTok documents the one-minute window
   * and the 429 ("Rate Limits on API Requests"), not the headers: some answers carry them, so the
   * client must use them where present and not depend on them. null (default) = no headers, no limit.
   */
  tiktokRateLimit: { limit: number; windowSeconds: number } | null;
  /**
   * The percentage Instagram's graph answers report in X-App-Usage (call_count, total_cputime,
   * total_time); null = no header, as Meta sends none until "enough calls have been made". Default null.
   */
  instagramAppUsagePercent: number | null;
}

export interface RouteContext {
  state: SimulatorState;
  settings: SimulatorSettings;
}

/** One platform's wire format: its routes, and how it says "server error" and "slow down". */
export interface PlatformRoutes {
  readonly provider: ProviderName;
  /** Which kind of endpoint a request is for (fault targeting); null when there is no such route. */
  routeKind(request: SimRequest): RouteKind | null;
  /**
   * The account a refresh request is for (from the refresh token, or Instagram's access token), so
   * that every call reaching a refresh endpoint is counted, faulted ones included; null if unknown.
   */
  refreshSubject(request: SimRequest, state: SimulatorState): string | null;
  handle(request: SimRequest, context: RouteContext): SimResponse;
  serverError(status: number): SimResponse;
  rateLimited(retryAfterSeconds: number | null): SimResponse;
}

/**
 * The sandbox's user picks who logs in by adding `sim_account`, `sim_name` or `sim_deny=1` to the
 * authorize URL in the browser, and unticks scopes with `sim_withhold=scope,scope` (partial
 * consent); tests use `queueConsent` instead.
 */
export function consentFromQuery(query: URLSearchParams): Consent | null {
  const deny = query.get('sim_deny') === '1' || query.get('sim_deny') === 'true';
  const account = query.get('sim_account');
  if (account === null && !deny) return null;
  const withheld = query.get('sim_withhold');
  return {
    externalAccountId: account ?? '',
    displayName: query.get('sim_name') ?? undefined,
    deny,
    ...(withheld ? { withheldScopes: withheld.split(',').filter((scope) => scope !== '') } : {}),
  };
}

/** The redirect back to the app, with `fragment` for Instagram's trailing `#_`. */
export function redirectUrl(
  redirectUri: string,
  params: Record<string, string | null>,
  fragment = '',
): string {
  const url = new URL(redirectUri);
  for (const [key, value] of Object.entries(params)) {
    if (value !== null) url.searchParams.set(key, value);
  }
  return `${url.toString()}${fragment}`;
}

export function retryAfterHeaders(retryAfterSeconds: number | null): Record<string, string> | undefined {
  return retryAfterSeconds === null ? undefined : { 'retry-after': String(retryAfterSeconds) };
}

export function scopeList(value: string | null, separator: ',' | ' ', fallback: readonly string[]): string[] {
  const scopes = (value ?? '')
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return scopes.length > 0 ? scopes : [...fallback];
}

/** What the provider simulator needs of a platform to speak its wire format. */
export interface PlatformSimulator {
  /** Mounted under `/<name>`. */
  routes: PlatformRoutes;
  /** Publishing endpoints, handed the raw request (absent: the platform has none simulated). */
  uploadRoutes?: UploadRoutes;
  /** The scopes a consent grants when the authorize request names none. */
  defaultScopes: readonly string[];
  /** Who consents when a test queued nobody. */
  defaultConsent: { externalAccountId: string; displayName: string };
  /** Token prefixes of the real platform, so a token in a log says where it came from. */
  tokenPrefixes: { access: string; refresh: string; code: string };
}
