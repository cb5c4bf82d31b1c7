import { type Clock, systemClock } from './clock.js';
import type { ProviderName } from './providerName.js';

/** The seed's OAuthTokenInfo: what is needed to decide about and use an account's tokens. */
export interface OAuthTokenInfo {
  accountId: string;
  provider: ProviderName;
  accessToken: string | null;
  refreshToken: string | null;
  /** Epoch ms (UTC); null when the platform gave no lifetime. */
  expiresAt: number | null;
  refreshTokenExpiresAt: number | null;
  scopes: string[];
  tokenIssuedAt: number | null;
}

export const DEFAULT_REFRESH_THRESHOLD_SECONDS = 300;

/**
 * True when the access token is missing, expired, or expires within `thresholdSeconds`.
 * A token without a known expiry is taken as valid: the platform gave no lifetime, and the first
 * 401 will say otherwise. The boundary counts as "close": at exactly now + threshold we refresh.
 */
export function isTokenExpiredOrClose(
  info: Pick<OAuthTokenInfo, 'accessToken' | 'expiresAt'>,
  thresholdSeconds: number = DEFAULT_REFRESH_THRESHOLD_SECONDS,
  clock: Clock = systemClock,
): boolean {
  if (!info.accessToken) return true;
  if (info.expiresAt === null) return false;
  return info.expiresAt - clock.now() <= thresholdSeconds * 1000;
}

/**
 * The decision ensureValidAccessToken makes: refresh when the token will be expired or close to it
 * at `validAt` (default: now). `validAt` in the future is the warm-up for a scheduled post.
 */
export function needsAccessTokenRefresh(
  info: Pick<OAuthTokenInfo, 'accessToken' | 'expiresAt'>,
  options: { thresholdSeconds: number; now: number; validAt?: number | null },
): boolean {
  const at = Math.max(options.now, options.validAt ?? options.now);
  return isTokenExpiredOrClose(info, options.thresholdSeconds, { now: () => at });
}

/** True once the access token can no longer be used at all. */
export function isAccessTokenExpired(
  info: Pick<OAuthTokenInfo, 'accessToken' | 'expiresAt'>,
  clock: Clock = systemClock,
): boolean {
  return isTokenExpiredOrClose(info, 0, clock);
}

/** Reasons a refresh did not produce a new token. Stable strings: they appear in the ledger and API. */
export const REFRESH_FAILURE_REASONS = [
  'no_refresh_token',
  'needs_reauth',
  'account_not_active',
  'token_too_young',
  'rate_limited',
  'provider_error',
  'provider_config_error',
  'refresh_in_progress',
] as const;
export type RefreshFailureReason = (typeof REFRESH_FAILURE_REASONS)[number];

/** The seed's OAuthRefreshResult. */
export interface OAuthRefreshResult {
  success: boolean;
  provider: ProviderName;
  /** null on success. */
  reason: RefreshFailureReason | null;
  /** The platform's own error code behind a failure (`invalid_grant`, `190`, …). */
  providerErrorCode: string | null;
  newAccessToken: string | null;
  newExpiresAt: number | null;
  /** For rate_limited: when the platform allows the next try (epoch ms). */
  retryAt: number | null;
  /** How many calls to the platform this refresh made (retries included); 0 if it used another's result. */
  attempts: number;
}
