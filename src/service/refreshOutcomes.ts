import type { SocialAccount } from '../domain/account.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import {
  needsAccessTokenRefresh,
  type OAuthRefreshResult,
  type OAuthTokenInfo,
  type RefreshFailureReason,
} from '../domain/token.js';
import type { ProviderCapabilities, RefreshedTokens } from '../platforms/provider.js';
import type { TokenUpdate } from '../store/accountRepository.js';

// The token service's pure pieces: the results it hands back, and what a platform's answer means
// for the stored row. No I/O here.

export function inactiveResult(account: SocialAccount): OAuthRefreshResult {
  return refreshFailure(
    account,
    account.status === 'needs_reauth' ? 'needs_reauth' : 'account_not_active',
    null,
    0,
  );
}

export function sharedSuccess(account: SocialAccount): OAuthRefreshResult {
  return {
    success: true,
    provider: account.provider,
    reason: null,
    providerErrorCode: null,
    newAccessToken: account.accessToken,
    newExpiresAt: account.expiresAt,
    retryAt: null,
    attempts: 0,
  };
}

export function refreshFailure(
  account: SocialAccount,
  reason: RefreshFailureReason,
  providerErrorCode: string | null,
  attempts: number,
): OAuthRefreshResult {
  return {
    success: false,
    provider: account.provider,
    reason,
    providerErrorCode,
    newAccessToken: null,
    newExpiresAt: null,
    retryAt: null,
    attempts,
  };
}

/** What became of issued tokens: stored (with the ledger row written, if this try wrote one), or not. */
export type StoreOutcome =
  | { kind: 'saved'; account: SocialAccount; event: NewOAuthEvent | null }
  | { kind: 'superseded'; account: SocialAccount | null };

/** The credential a refresh spends: the refresh token, or on Instagram the access token itself. */
export function credentialOf(account: SocialAccount, capabilities: ProviderCapabilities): string | null {
  return capabilities.refreshesAccessTokenItself ? account.accessToken : account.refreshToken;
}

/** The row already holds these tokens (an earlier try committed before its connection failed). */
export function holdsIssuedTokens(account: SocialAccount, update: TokenUpdate): boolean {
  return (
    account.accessToken === update.accessToken &&
    (update.refreshToken === null || account.refreshToken === update.refreshToken)
  );
}

/**
 * What a 2xx refresh answer lacks for the account to go on, or null. A rotating platform's answer
 * must carry the new refresh token (the old one is spent); Instagram's, the new access token (it
 * is the credential). Elsewhere whatever came is kept, the rest stays as stored.
 */
export function missingCredential(
  tokens: RefreshedTokens,
  account: SocialAccount,
  capabilities: ProviderCapabilities,
): string | null {
  if (capabilities.refreshesAccessTokenItself) return tokens.accessToken === null ? 'an access token' : null;
  if (capabilities.rotatesRefreshToken && tokens.refreshToken === null) return 'a new refresh token';
  if (tokens.accessToken === null && account.accessToken === null) return 'an access token';
  return null;
}

/**
 * The row's new token values. An answer without an access token (but with the new refresh token)
 * keeps the stored access token, its expiry and issue time: it is still valid until then.
 */
export function tokenUpdateOf(account: SocialAccount, tokens: RefreshedTokens, now: number): TokenUpdate {
  const hasAccess = tokens.accessToken !== null;
  return {
    accessToken: tokens.accessToken ?? account.accessToken!,
    refreshToken: tokens.refreshToken,
    expiresAt: !hasAccess
      ? account.expiresAt
      : tokens.expiresInSeconds === null
        ? null
        : now + tokens.expiresInSeconds * 1000,
    refreshTokenExpiresAt:
      tokens.refreshTokenExpiresInSeconds === null ? null : now + tokens.refreshTokenExpiresInSeconds * 1000,
    scopes: tokens.scopes,
    tokenIssuedAt: hasAccess ? now : (account.tokenIssuedAt ?? now),
  };
}

export function toTokenInfo(account: SocialAccount): OAuthTokenInfo {
  return {
    accountId: account.id,
    provider: account.provider,
    accessToken: account.accessToken,
    refreshToken: account.refreshToken,
    expiresAt: account.expiresAt,
    refreshTokenExpiresAt: account.refreshTokenExpiresAt,
    scopes: account.scopes,
    tokenIssuedAt: account.tokenIssuedAt,
  };
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Whether the account's access token should be refreshed now for a caller with `options`
 * (`defaultThresholdSeconds` from config when the caller names none).
 */
export function isStale(
  now: number,
  defaultThresholdSeconds: number,
  account: SocialAccount,
  options: { thresholdSeconds?: number; validAt?: number | null },
): boolean {
  const thresholdSeconds = options.thresholdSeconds ?? defaultThresholdSeconds;
  let validAt = options.validAt ?? null;
  if (validAt !== null && account.expiresAt !== null && account.tokenIssuedAt !== null) {
    // A token refreshed now would last about as long as the current one did. If even that
    // would not cover `validAt`, refreshing now only burns a refresh (and would repeat on every
    // call): judge by now, and let a later call, closer to the time, do it.
    const lifetime = account.expiresAt - account.tokenIssuedAt;
    if (validAt + thresholdSeconds * 1000 >= now + lifetime) validAt = null;
  }
  return needsAccessTokenRefresh(account, { thresholdSeconds, now, validAt });
}
