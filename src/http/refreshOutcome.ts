import type { SocialAccount } from '../domain/account.js';
import type { OAuthRefreshResult } from '../domain/token.js';
import { capabilitiesOf } from '../platforms/capabilities.js';
import { HttpError } from './errorCatalog.js';

/** Whole seconds from now until `at` (at least 1), for Retry-After; none when the time is unknown. */
function retryAfter(at: number | null | undefined, now: number): Record<string, string> {
  if (at === null || at === undefined || !Number.isFinite(at)) return {};
  return { 'retry-after': String(Math.max(1, Math.ceil((at - now) / 1000))) };
}

/**
 * What an API caller is told when a refresh did not leave a usable token. The split matters to the
 * caller: 409 means "not with this grant" (reconnect; or, for token_too_young, wait until
 * Retry-After), 429/502/503 mean "try again later" (after Retry-After when we know when), 500
 * provider_config_error means "the service's platform credentials need an operator".
 */
export function refreshFailure(
  account: SocialAccount,
  result: OAuthRefreshResult | null,
  now: number,
): HttpError {
  if (account.status === 'revoked')
    return new HttpError('account_revoked', 'The account was revoked; its user must connect it again');
  if (
    account.status === 'needs_reauth' ||
    result?.reason === 'needs_reauth' ||
    result?.reason === 'no_refresh_token'
  ) {
    return new HttpError(
      'account_needs_reauth',
      'The platform no longer accepts this grant; its user must connect it again',
    );
  }
  const why = [result?.reason, result?.providerErrorCode].filter(Boolean).join(': ') || 'no valid token';
  if (result?.reason === 'token_too_young') {
    // Nothing reached the platform: the token may be refreshed once it is old enough.
    const minimumAgeMs = capabilitiesOf(account.provider).minimumTokenAgeForRefreshSeconds * 1000;
    const oldEnoughAt = account.tokenIssuedAt === null ? null : account.tokenIssuedAt + minimumAgeMs;
    return new HttpError(
      'token_too_young',
      'The platform refreshes this token only once it is old enough; try again after Retry-After',
      retryAfter(oldEnoughAt, now),
    );
  }
  if (result?.reason === 'provider_config_error') {
    return new HttpError(
      'provider_config_error',
      `The platform refused this service's client configuration (${why}); an operator must fix it`,
    );
  }
  if (result?.reason === 'rate_limited') {
    return new HttpError(
      'rate_limited',
      `The platform is rate limiting refreshes (${why})`,
      retryAfter(result.retryAt, now),
    );
  }
  if (result?.reason === 'refresh_in_progress') {
    return new HttpError(
      'refresh_in_progress',
      'Another process is refreshing this account; try again shortly',
      { 'retry-after': '1' },
    );
  }
  // retryAt is when the cool-down ends: asking before then gets this same answer without a call.
  return new HttpError(
    'refresh_failed',
    `The refresh did not succeed (${why})`,
    retryAfter(result?.retryAt, now),
  );
}
