import type { SocialAccount } from '../domain/account.js';
import type { OAuthRefreshResult } from '../domain/token.js';
import { HttpError } from './errorCatalog.js';

/**
 * What an API caller is told when a refresh did not leave a usable token. The split matters to the
 * caller: 409 means "ask your user to reconnect", 429/502/503 mean "try again later".
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
  if (result?.reason === 'rate_limited') {
    const seconds = result.retryAt === null ? null : Math.max(1, Math.ceil((result.retryAt - now) / 1000));
    return new HttpError(
      'rate_limited',
      `The platform is rate limiting refreshes (${why})`,
      seconds === null ? {} : { 'retry-after': String(seconds) },
    );
  }
  if (result?.reason === 'refresh_in_progress') {
    return new HttpError(
      'refresh_in_progress',
      'Another process is refreshing this account; try again shortly',
      { 'retry-after': '1' },
    );
  }
  return new HttpError('refresh_failed', `The refresh did not succeed (${why})`);
}
