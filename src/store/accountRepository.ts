import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
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

/**
 * The one place that reads and writes `social_accounts`. Tokens are encrypted on the way in and
 * decrypted on the way out; nothing above this module sees a ciphertext or writes SQL.
 */
export class AccountRepository {
  constructor(
    private readonly store: StoreDatabase,
    private readonly cipher: TokenCipher,
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
      return work(new AccountRepository(bound, this.cipher), bound);
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
  async readVersion(
    id: string,
  ): Promise<{ version: number; status: string; leaseUntil: number | null } | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select(['version', 'status', 'refresh_lease_until'])
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? { version: row.version, status: row.status, leaseUntil: row.refresh_lease_until } : null;
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

  /** Stores refreshed tokens, marks the account active and bumps its version. */
  async saveTokens(id: string, update: TokenUpdate, now: number): Promise<SocialAccount> {
    const values: Partial<Row> = {
      oauth_access_token: this.seal(update.accessToken, id, 'access_token'),
      oauth_expires_at: update.expiresAt,
      token_issued_at: update.tokenIssuedAt,
      status: 'active',
      last_refresh_at: now,
      last_error: null,
      updated_at: now,
    };
    if (update.refreshToken !== null && update.refreshToken !== '') {
      values.oauth_refresh_token = this.seal(update.refreshToken, id, 'refresh_token');
      values.oauth_refresh_expires_at = update.refreshTokenExpiresAt;
    }
    if (update.scopes !== null) values.oauth_scopes = JSON.stringify(update.scopes);
    await this.db
      .updateTable('social_accounts')
      .set((eb) => ({ ...values, version: eb('version', '+', 1) }))
      .where('id', '=', id)
      .execute();
    return (await this.findById(id))!;
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
        version: eb('version', '+', 1),
      }))
      .where('id', '=', id)
      .execute();
    return (await this.findById(id))!;
  }

  /** Moves an account out of `active`. Revoking also deletes its tokens. */
  async setStatus(id: string, status: AccountStatus, lastError: string | null, now: number): Promise<void> {
    const values: Partial<Row> = { status, last_error: lastError, updated_at: now };
    if (status === 'revoked') {
      values.oauth_access_token = null;
      values.oauth_refresh_token = null;
      values.oauth_expires_at = null;
      values.oauth_refresh_expires_at = null;
    }
    await this.db
      .updateTable('social_accounts')
      .set((eb) => ({ ...values, version: eb('version', '+', 1) }))
      .where('id', '=', id)
      .execute();
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
