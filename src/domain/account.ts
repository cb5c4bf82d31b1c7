import type { ProviderName } from './providerName.js';

export const ACCOUNT_STATUSES = ['active', 'needs_reauth', 'revoked'] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

/** A social account as the rest of the code sees it: tokens already decrypted, times in epoch ms. */
export interface SocialAccount {
  id: string;
  ownerId: string;
  provider: ProviderName;
  externalAccountId: string;
  displayName: string | null;
  accessToken: string | null;
  refreshToken: string | null;
  /** When the access token expires (epoch ms, UTC), null when the platform gave no lifetime. */
  expiresAt: number | null;
  /** When the refresh token expires, where the platform says (TikTok's refresh_expires_in). */
  refreshTokenExpiresAt: number | null;
  scopes: string[];
  status: AccountStatus;
  /** When the current access token was issued: Instagram only refreshes tokens at least 24 h old. */
  tokenIssuedAt: number | null;
  /** Bumped on every token write: lets waiters see that someone else refreshed. */
  version: number;
  lastRefreshAt: number | null;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * An account in a listing: everything but its tokens, which listings never decrypt (only whether
 * each is there).
 */
export type AccountListing = Omit<SocialAccount, 'accessToken' | 'refreshToken'> & {
  hasAccessToken: boolean;
  hasRefreshToken: boolean;
};

/** The listing view of an account (a listing is returned as it is). */
export function toAccountListing(account: SocialAccount | AccountListing): AccountListing {
  if (!('accessToken' in account)) return account;
  const { accessToken, refreshToken, ...rest } = account;
  return { ...rest, hasAccessToken: accessToken !== null, hasRefreshToken: refreshToken !== null };
}

/** What an account looks like outside the process: never a token. */
export interface PublicAccount {
  id: string;
  ownerId: string;
  provider: ProviderName;
  externalAccountId: string;
  displayName: string | null;
  status: AccountStatus;
  expiresAt: string | null;
  refreshTokenExpiresAt: string | null;
  scopes: string[];
  hasRefreshToken: boolean;
  lastRefreshAt: string | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The account can be used right now: active, with an access token that has not expired. */
export function hasUsableAccessToken(
  account: Pick<SocialAccount, 'status' | 'accessToken' | 'expiresAt'>,
  now: number,
): boolean {
  return account.status === 'active' && account.accessToken !== null && (account.expiresAt ?? Infinity) > now;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function toPublicAccount(account: SocialAccount | AccountListing): PublicAccount {
  const listing = toAccountListing(account);
  return {
    id: account.id,
    ownerId: account.ownerId,
    provider: account.provider,
    externalAccountId: account.externalAccountId,
    displayName: account.displayName,
    status: account.status,
    expiresAt: iso(account.expiresAt),
    refreshTokenExpiresAt: iso(account.refreshTokenExpiresAt),
    scopes: account.scopes,
    hasRefreshToken: listing.hasRefreshToken,
    lastRefreshAt: iso(account.lastRefreshAt),
    lastError: account.lastError,
    createdAt: new Date(account.createdAt).toISOString(),
    updatedAt: new Date(account.updatedAt).toISOString(),
  };
}
