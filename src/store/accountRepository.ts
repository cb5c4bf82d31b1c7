import { randomUUID } from 'node:crypto';
import { type Selectable, sql } from 'kysely';
import type { TokenCipher, TokenField } from '../crypto/tokenCipher.js';
import type { AccountStatus, SocialAccount } from '../domain/account.js';
import type { ProviderName } from '../domain/providerName.js';
import type { StoreDatabase } from './database.js';
import type { SocialAccountsTable } from './schema.js';

export interface NewAccount {
  /** Generated when omitted. Chosen before insert because it is bound into the ciphertexts. */
  id?: string;
  ownerId: string;
  provider: ProviderName;
  externalAccountId: string;
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

type Row = Selectable<SocialAccountsTable>;

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

/**
 * The one place that reads and writes `social_accounts`. Tokens are encrypted on the way in and
 * decrypted on the way out; nothing above this module sees a ciphertext or writes SQL.
 */
export class AccountRepository {
  constructor(
    private readonly store: StoreDatabase,
    private readonly cipher: TokenCipher,
    private readonly schedule: RefreshSchedule | null = null,
  ) {}

  private get db() {
    return this.store.db;
  }

  /**
   * Runs `work` in one transaction with a repository (and the transaction's database) bound to it:
   * all of it is committed, or none.
   */
  async transaction<T>(work: (accounts: AccountRepository, store: StoreDatabase) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const bound: StoreDatabase = { ...this.store, db: trx };
      return work(new AccountRepository(bound, this.cipher, this.schedule), bound);
    });
  }

  async insert(input: NewAccount, now: number): Promise<SocialAccount> {
    const id = input.id ?? randomUUID();
    await this.db
      .insertInto('social_accounts')
      .values({
        id,
        owner_id: input.ownerId,
        provider: input.provider,
        external_account_id: input.externalAccountId,
        display_name: input.displayName,
        oauth_access_token: this.seal(input.accessToken, id, 'access_token'),
        oauth_refresh_token: this.seal(input.refreshToken, id, 'refresh_token'),
        oauth_expires_at: input.expiresAt,
        oauth_refresh_expires_at: input.refreshTokenExpiresAt,
        oauth_scopes: JSON.stringify(input.scopes),
        status: input.status ?? 'active',
        token_issued_at: input.tokenIssuedAt,
        version: 1,
        last_refresh_at: null,
        last_error: null,
        refresh_lease_owner: null,
        refresh_lease_until: null,
        next_refresh_at:
          (input.status ?? 'active') === 'active'
            ? this.scheduleFor(scheduleInputOfAccount({ ...input, lastRefreshAt: null }), now)
            : null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    return (await this.findById(id))!;
  }

  async findById(id: string): Promise<SocialAccount | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? this.toAccount(row) : null;
  }

  async findByExternalId(provider: ProviderName, externalAccountId: string): Promise<SocialAccount | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where('provider', '=', provider)
      .where('external_account_id', '=', externalAccountId)
      .executeTakeFirst();
    return row ? this.toAccount(row) : null;
  }

  /** Current version only: the cheap check a waiter polls while another process refreshes. */
  async readVersion(id: string): Promise<{
    version: number;
    status: string;
    leaseUntil: number | null;
    leaseOwner: string | null;
  } | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select(['version', 'status', 'refresh_lease_until', 'refresh_lease_owner'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row
      ? {
          version: row.version,
          status: row.status,
          leaseUntil: row.refresh_lease_until,
          leaseOwner: row.refresh_lease_owner,
        }
      : null;
  }

  /** Accounts without their tokens (nothing is decrypted): for listings. */
  async list(filter: AccountListFilter = {}): Promise<SocialAccount[]> {
    let query = this.db
      .selectFrom('social_accounts')
      .selectAll()
      .orderBy('id')
      .limit(filter.limit ?? 100);
    if (filter.ownerId !== undefined) query = query.where('owner_id', '=', filter.ownerId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.provider !== undefined) query = query.where('provider', '=', filter.provider);
    if (filter.afterId !== undefined) query = query.where('id', '>', filter.afterId);
    const rows = await query.execute();
    return rows.map((row) => this.toAccount(row, { decrypt: false }));
  }

  async countByStatus(): Promise<Array<{ provider: string; status: string; count: number }>> {
    const rows = await this.db
      .selectFrom('social_accounts')
      .select(['provider', 'status', (eb) => eb.fn.countAll<number | string>().as('count')])
      .groupBy(['provider', 'status'])
      .execute();
    return rows.map((r) => ({ provider: r.provider, status: r.status, count: Number(r.count) }));
  }

  /**
   * Stores refreshed tokens, marks the account active and bumps its version, in one statement.
   *
   * With `expectedVersion`, writes only if the row is still at that version and active: a revoke
   * or reconnect that landed while the refresh was on the wire wins, and null is returned.
   * With `current` (the row as the refresher read it), the next keep-alive time is computed and
   * written in the same statement; with `releaseLeaseOf`, that owner's refresh lease is released
   * in it too. One commit instead of four is most of a refresh's database cost.
   */
  async saveTokens(
    id: string,
    update: TokenUpdate,
    now: number,
    expectedVersion?: number,
    options: { current?: SocialAccount; releaseLeaseOf?: string } = {},
  ): Promise<SocialAccount | null> {
    const values: Partial<Row> = {
      oauth_access_token: this.seal(update.accessToken, id, 'access_token'),
      oauth_expires_at: update.expiresAt,
      token_issued_at: update.tokenIssuedAt,
      status: 'active',
      last_refresh_at: now,
      last_error: null,
      updated_at: now,
    };
    const newRefreshToken = update.refreshToken !== null && update.refreshToken !== '';
    if (newRefreshToken) {
      values.oauth_refresh_token = this.seal(update.refreshToken!, id, 'refresh_token');
      values.oauth_refresh_expires_at = update.refreshTokenExpiresAt;
    }
    if (update.scopes !== null) values.oauth_scopes = JSON.stringify(update.scopes);
    values.refresh_failures = 0;
    const current = options.current;
    if (current) {
      values.next_refresh_at = this.scheduleFor(
        scheduleInputOfAccount({
          ...current,
          accessToken: update.accessToken,
          refreshToken: newRefreshToken ? update.refreshToken : current.refreshToken,
          expiresAt: update.expiresAt,
          refreshTokenExpiresAt: newRefreshToken
            ? update.refreshTokenExpiresAt
            : current.refreshTokenExpiresAt,
          tokenIssuedAt: update.tokenIssuedAt,
          lastRefreshAt: now,
        }),
        now,
      );
    }
    const owner = options.releaseLeaseOf;
    let query = this.db
      .updateTable('social_accounts')
      .set((eb) => ({
        ...values,
        version: eb('version', '+', 1),
        // Only our own lease is released: a lapsed one someone else took stays theirs (and the
        // tokens are saved all the same: the platform has already issued them).
        ...(owner === undefined
          ? {}
          : {
              refresh_lease_owner: sql<
                string | null
              >`case when refresh_lease_owner = ${owner} then null else refresh_lease_owner end`,
              refresh_lease_until: sql<
                number | null
              >`case when refresh_lease_owner = ${owner} then null else refresh_lease_until end`,
            }),
      }))
      .where('id', '=', id);
    if (expectedVersion !== undefined) {
      query = query.where('version', '=', expectedVersion).where('status', '=', 'active');
    }
    const row = await query.returningAll().executeTakeFirst();
    if (!row) return null;
    const saved = this.toAccount(row);
    return current ? saved : this.rescheduled(saved, now);
  }

  /** Replaces everything on reconnect: a new grant is a new start. */
  async replaceGrant(
    id: string,
    grant: Omit<NewAccount, 'id' | 'provider' | 'externalAccountId' | 'status'>,
    now: number,
  ): Promise<SocialAccount> {
    await this.db
      .updateTable('social_accounts')
      .set((eb) => ({
        owner_id: grant.ownerId,
        display_name: grant.displayName,
        oauth_access_token: this.seal(grant.accessToken, id, 'access_token'),
        oauth_refresh_token: this.seal(grant.refreshToken, id, 'refresh_token'),
        oauth_expires_at: grant.expiresAt,
        oauth_refresh_expires_at: grant.refreshTokenExpiresAt,
        oauth_scopes: JSON.stringify(grant.scopes),
        token_issued_at: grant.tokenIssuedAt,
        status: 'active',
        last_error: null,
        updated_at: now,
        refresh_failures: 0,
        version: eb('version', '+', 1),
      }))
      .where('id', '=', id)
      .execute();
    return this.rescheduled((await this.findById(id))!, now);
  }

  /** Moves an account out of `active`. Revoking also deletes its tokens. */
  /** With `expectedVersion`, changes nothing (and returns false) if the row moved on meanwhile. */
  async setStatus(
    id: string,
    status: AccountStatus,
    lastError: string | null,
    now: number,
    expectedVersion?: number,
  ): Promise<boolean> {
    const values: Partial<Row> = { status, last_error: lastError, updated_at: now };
    // Only active accounts are kept alive: a dead one is never retried in the background.
    if (status !== 'active') values.next_refresh_at = null;
    if (status === 'revoked') {
      values.oauth_access_token = null;
      values.oauth_refresh_token = null;
      values.oauth_expires_at = null;
      values.oauth_refresh_expires_at = null;
    }
    let query = this.db
      .updateTable('social_accounts')
      .set((eb) => ({ ...values, version: eb('version', '+', 1) }))
      .where('id', '=', id);
    if (expectedVersion !== undefined) query = query.where('version', '=', expectedVersion);
    const result = await query.executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return false;
    if (status === 'active') {
      const account = await this.findById(id);
      if (account) await this.rescheduled(account, now);
    }
    return true;
  }

  /** A failed refresh that leaves the grant intact (transient, rate limited). */
  async recordRefreshError(id: string, lastError: string, now: number): Promise<void> {
    await this.db
      .updateTable('social_accounts')
      .set({ last_error: lastError, updated_at: now })
      .where('id', '=', id)
      .execute();
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('social_accounts').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * Takes the account's refresh lease if nobody holds a live one. One conditional UPDATE, atomic on
   * both databases: of many processes racing, exactly one sees a changed row. The lease expires
   * by itself, so a refresher that crashed blocks the account for at most `leaseMs`.
   */
  async tryAcquireRefreshLease(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set({ refresh_lease_owner: owner, refresh_lease_until: now + leaseMs })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('refresh_lease_until', 'is', null), eb('refresh_lease_until', '<=', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Extends a lease this owner still holds; false when it lapsed and may be someone else's now. */
  async tryRenewRefreshLease(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set({ refresh_lease_until: now + leaseMs })
      .where('id', '=', id)
      .where('refresh_lease_owner', '=', owner)
      .where('refresh_lease_until', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Releases the lease only if this owner still holds it: nobody can delete another's lease. */
  async releaseRefreshLease(id: string, owner: string): Promise<void> {
    await this.db
      .updateTable('social_accounts')
      .set({ refresh_lease_owner: null, refresh_lease_until: null })
      .where('id', '=', id)
      .where('refresh_lease_owner', '=', owner)
      .execute();
  }

  // Background refresh schedule ------------------------------------------------------------------

  /**
   * Claims up to `limit` active accounts due by `dueBy`, earliest first, by moving their
   * `next_refresh_at` to `now + claimMs`: other workers no longer see them as due, and if this one
   * dies they come due again when the claim runs out. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets
   * concurrent claimers take disjoint rows without waiting on each other; SQLite has one writer, so
   * the single UPDATE is already exclusive.
   */
  async claimDueForRefresh(options: {
    /** Accounts due at or before this time. */
    dueBy: number;
    now: number;
    limit: number;
    claimMs: number;
  }): Promise<ClaimedAccount[]> {
    const { dueBy, now, limit, claimMs } = options;
    const kind = this.store.kind;
    const rows = await this.db
      .updateTable('social_accounts')
      .set({ next_refresh_at: now + claimMs })
      .where('id', 'in', (eb) => {
        const due = eb
          .selectFrom('social_accounts')
          .select('id')
          .where('status', '=', 'active')
          .where('next_refresh_at', '<=', dueBy)
          .orderBy('next_refresh_at')
          .limit(limit);
        return kind === 'postgres' ? due.forUpdate().skipLocked() : due;
      })
      .returning(['id', 'provider', 'version', 'refresh_failures'])
      .execute();
    return rows.map((row) => ({
      id: row.id,
      provider: row.provider as ProviderName,
      version: row.version,
      refreshFailures: row.refresh_failures,
    }));
  }

  /** How many active accounts are due at `now` (through the schedule index). */
  async countDueForRefresh(now: number): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', '=', 'active')
      .where('next_refresh_at', '<=', now)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Plans the next try after a failed keep-alive refresh and counts the failure, unless the account
   * changed since it was claimed (someone refreshed it: their schedule stands) or is no longer active.
   */
  async scheduleRetry(id: string, expectedVersion: number, at: number): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set((eb) => ({ next_refresh_at: at, refresh_failures: eb('refresh_failures', '+', 1) }))
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Moves the next refresh without counting a failure (a refresh that was not possible yet). */
  async scheduleRefreshAt(id: string, expectedVersion: number, at: number): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set({ next_refresh_at: at })
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async readSchedule(id: string): Promise<{ nextRefreshAt: number | null; refreshFailures: number } | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select(['next_refresh_at', 'refresh_failures'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { nextRefreshAt: row.next_refresh_at, refreshFailures: row.refresh_failures } : null;
  }

  /**
   * Schedules up to `limit` active accounts that have no schedule yet (written before the schedule
   * existed, or without a scheduler); returns how many. Found through the schedule index.
   */
  async scheduleUnscheduled(now: number, limit: number): Promise<number> {
    if (this.schedule === null) return 0;
    const rows = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where('status', '=', 'active')
      .where('next_refresh_at', 'is', null)
      .limit(limit)
      .execute();
    for (const row of rows) {
      const at = this.scheduleFor(scheduleInputOfRow(row), now) ?? now;
      await this.db
        .updateTable('social_accounts')
        .set({ next_refresh_at: at })
        .where('id', '=', row.id)
        .where('next_refresh_at', 'is', null)
        .execute();
    }
    return rows.length;
  }

  /** Active accounts after `afterId`, in id order, as claims at their current version (`refresh --all`). */
  async activeAfter(afterId: string | null, limit: number): Promise<ClaimedAccount[]> {
    let query = this.db
      .selectFrom('social_accounts')
      .select(['id', 'provider', 'version', 'refresh_failures'])
      .where('status', '=', 'active')
      .orderBy('id')
      .limit(limit);
    if (afterId !== null) query = query.where('id', '>', afterId);
    return (await query.execute()).map((row) => ({
      id: row.id,
      provider: row.provider as ProviderName,
      version: row.version,
      refreshFailures: row.refresh_failures,
    }));
  }

  async countActive(): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private scheduleFor(input: ScheduleInput, now: number): number | null {
    return this.schedule === null ? null : this.schedule(input, now);
  }

  /** Writes the schedule that follows from the account's new tokens. */
  private async rescheduled(account: SocialAccount, now: number): Promise<SocialAccount> {
    if (this.schedule === null || account.status !== 'active') return account;
    const at = this.scheduleFor(scheduleInputOfAccount(account), now);
    await this.db
      .updateTable('social_accounts')
      .set({ next_refresh_at: at })
      .where('id', '=', account.id)
      .where('version', '=', account.version)
      .execute();
    return account;
  }

  /** Raw rows for key rotation: ciphertexts as stored, a batch at a time. */
  async ciphertextBatch(afterId: string | null, limit: number) {
    let query = this.db
      .selectFrom('social_accounts')
      .select(['id', 'oauth_access_token', 'oauth_refresh_token'])
      .orderBy('id')
      .limit(limit);
    if (afterId !== null) query = query.where('id', '>', afterId);
    return query.execute();
  }

  /** Swaps one ciphertext for another only if the row still holds the old one (no lost refresh). */
  async replaceCiphertext(
    id: string,
    field: TokenField,
    expected: string,
    replacement: string,
  ): Promise<boolean> {
    const column = field === 'access_token' ? 'oauth_access_token' : 'oauth_refresh_token';
    const result = await this.db
      .updateTable('social_accounts')
      .set({ [column]: replacement })
      .where('id', '=', id)
      .where(column, '=', expected)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private seal(token: string | null, accountId: string, field: TokenField): string | null {
    return token === null || token === '' ? null : this.cipher.encrypt(token, { accountId, field });
  }

  private toAccount(row: Row, options: { decrypt: boolean } = { decrypt: true }): SocialAccount {
    const open = (value: string | null, field: TokenField): string | null => {
      if (value === null) return null;
      // Listings never decrypt: a non-null marker is enough to say "has a token".
      return options.decrypt ? this.cipher.decrypt(value, { accountId: row.id, field }) : '[encrypted]';
    };
    return {
      id: row.id,
      ownerId: row.owner_id,
      provider: row.provider as ProviderName,
      externalAccountId: row.external_account_id,
      displayName: row.display_name,
      accessToken: open(row.oauth_access_token, 'access_token'),
      refreshToken: open(row.oauth_refresh_token, 'refresh_token'),
      expiresAt: row.oauth_expires_at,
      refreshTokenExpiresAt: row.oauth_refresh_expires_at,
      scopes: JSON.parse(row.oauth_scopes) as string[],
      status: row.status as AccountStatus,
      tokenIssuedAt: row.token_issued_at,
      version: row.version,
      lastRefreshAt: row.last_refresh_at,
      lastError: row.last_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

function scheduleInputOfRow(row: Row): ScheduleInput {
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
