import type { Selectable } from 'kysely';
import type { AccountStatus, SocialAccount } from '../domain/account.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { ProviderName } from '../domain/providerName.js';
import type { SocialAccountsTable } from './schema.js';

export interface NewAccount {
  /** Generated when omitted. Chosen before insert because it is bound into the ciphertexts. */
  id?: string;
  ownerId: string;
  provider: ProviderName;
  externalAccountId: string;
  /**
   * The platform's other id for the account, where it has two (Instagram: the code exchange's
   * app-scoped user_id besides /me's user_id): platform callbacks may name either.
   */
  alternateExternalId?: string | null;
  displayName: string | null;
  accessToken: string | null;
  refreshToken: string | null;
  expiresAt: number | null;
  refreshTokenExpiresAt: number | null;
  scopes: string[];
  tokenIssuedAt: number | null;
  status?: AccountStatus;
}

/** New tokens from a refresh or a reconnect. */
export interface TokenUpdate {
  accessToken: string;
  /**
   * null = the platform sent none: keep the stored one (Google). A stored refresh token is never
   * overwritten with an empty one, and never copied over a new one (TikTok rotates).
   */
  refreshToken: string | null;
  expiresAt: number | null;
  /** Only applied together with a new refresh token. */
  refreshTokenExpiresAt: number | null;
  /** null = the platform did not say: keep the stored scopes. */
  scopes: string[] | null;
  tokenIssuedAt: number;
}

export interface AccountListFilter {
  ownerId?: string;
  status?: AccountStatus;
  provider?: ProviderName;
  /** Keyset pagination: ids sort lexically. */
  afterId?: string;
  limit?: number;
}

/** A `social_accounts` row as stored: ciphertexts, never plaintext tokens. */
export type AccountRow = Selectable<SocialAccountsTable>;

/** A row as a lease take returns it, with who held the lease before. */
export type LeasedRow = AccountRow & { previous_owner: string | null };

/** What the refresh schedule is computed from: the account's token times, never a token. */
export interface ScheduleInput {
  provider: ProviderName;
  hasRefreshToken: boolean;
  hasAccessToken: boolean;
  expiresAt: number | null;
  refreshTokenExpiresAt: number | null;
  tokenIssuedAt: number | null;
  lastRefreshAt: number | null;
}

/**
 * When an active account should next be refreshed to stay alive (see src/service/refreshSchedule.ts).
 * Without one, accounts are written unscheduled and the refresher schedules them on its next pass.
 */
export type RefreshSchedule = (input: ScheduleInput, now: number) => number | null;

/** An account a refresher claimed: refresh it only if `version` is still current. */
export interface ClaimedAccount {
  id: string;
  provider: ProviderName;
  version: number;
  refreshFailures: number;
}

/** A refresh lease just taken, with the row as it stands under it. */
export interface TakenLease {
  account: SocialAccount;
  /** When the lease lapses unless renewed (epoch ms), as written. */
  until: number;
  /**
   * Who held it before, if anyone: a lapsed lease that was never released means its holder died
   * or stalled mid-refresh.
   */
  previousOwner: string | null;
}

export interface SaveTokensOptions {
  /** The row as the refresher read it: the next keep-alive time is written in the same statement. */
  current?: SocialAccount;
  /** Releases this owner's refresh lease in the same statement. */
  releaseLeaseOf?: string;
  /** Appended to the ledger in the same commit, only if the tokens are saved. */
  event?: NewOAuthEvent;
  /**
   * With `expectedVersion`: the row may also be `needs_reauth` (not only `active`), and is made
   * active again. For tokens whose refresh spent the refresh token another process then found
   * spent (issue 10, item 4): they are the living grant.
   */
  reviveFromNeedsReauth?: boolean;
}

/**
 * A time on the refresh schedule, as the caller sees it: `at` in its clock, with its `now`. Where the
 * database's clock decides due times (PostgreSQL, shared by several machines), only `at - now` is
 * used, added to the database's clock; on SQLite `at` is written as it is (one machine, one clock).
 */
export interface ScheduleTime {
  at: number;
  now: number;
}

export interface LeaseRequest {
  id: string;
  owner: string;
  now: number;
  until: number;
}

export interface SaveRequest {
  id: string;
  update: TokenUpdate;
  now: number;
  expectedVersion: number | undefined;
  options: SaveTokensOptions;
}

export function scheduleInputOfRow(row: AccountRow): ScheduleInput {
  return {
    provider: row.provider as ProviderName,
    hasRefreshToken: row.oauth_refresh_token !== null,
    hasAccessToken: row.oauth_access_token !== null,
    expiresAt: row.oauth_expires_at,
    refreshTokenExpiresAt: row.oauth_refresh_expires_at,
    tokenIssuedAt: row.token_issued_at,
    lastRefreshAt: row.last_refresh_at,
  };
}

/** What the schedule needs to know of an account's tokens: their times and presence, never a token. */
export function scheduleInputOfAccount(
  account: Pick<
    SocialAccount,
    | 'provider'
    | 'accessToken'
    | 'refreshToken'
    | 'expiresAt'
    | 'refreshTokenExpiresAt'
    | 'tokenIssuedAt'
    | 'lastRefreshAt'
  >,
): ScheduleInput {
  return {
    provider: account.provider,
    hasRefreshToken: Boolean(account.refreshToken),
    hasAccessToken: Boolean(account.accessToken),
    expiresAt: account.expiresAt,
    refreshTokenExpiresAt: account.refreshTokenExpiresAt,
    tokenIssuedAt: account.tokenIssuedAt,
    lastRefreshAt: account.lastRefreshAt,
  };
}
