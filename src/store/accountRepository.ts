import { randomUUID } from 'node:crypto';
import { CompiledQuery, sql } from 'kysely';
import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { AccountListing, AccountStatus, SocialAccount } from '../domain/account.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { ProviderName } from '../domain/providerName.js';
import { AccountCodec } from './accountCodec.js';
import { AccountScheduleStore } from './accountSchedule.js';
import {
  type AccountListFilter,
  type LeasedRow,
  type LeaseRequest,
  type NewAccount,
  type RefreshSchedule,
  type AccountRow as Row,
  type SaveRequest,
  type SaveTokensOptions,
  scheduleInputOfAccount,
  type TakenLease,
  type TokenUpdate,
} from './accountTypes.js';
import { Batcher } from './batcher.js';
import { CiphertextStore } from './ciphertextStore.js';
import type { StoreDatabase } from './database.js';
import { dialectOf, type StoreDialect } from './dialect.js';
import { inTransaction, ledgerRow, writeLedgerEvent } from './ledgerRepository.js';
import { OpenedTokens } from './openedTokens.js';

export * from './accountTypes.js';
export { OpenedTokens } from './openedTokens.js';

/**
 * The one place that reads and writes `social_accounts`. Tokens are encrypted on the way in and
 * decrypted on the way out; nothing above this module sees a ciphertext or writes SQL.
 */
export class AccountRepository {
  /**
   * Lease takes and token saves that arrive together share one statement and one commit (see
   * Batcher). Off inside a transaction: there every statement must run on the transaction.
   */
  private readonly leaseBatcher: Batcher<LeaseRequest, LeasedRow | null> | null;
  private readonly saveBatcher: Batcher<SaveRequest, Row | null> | null;
  /**
   * PostgreSQL only: reads by id that arrive together become one `where id in (…)`. Each query is a
   * round trip and a backend's parse and plan; SQLite reads in-process, so there it would only add
   * a wait.
   */
  private readonly readBatcher: Batcher<string, Row | undefined> | null;

  /** Where SQLite and PostgreSQL differ (see dialect.ts). */
  private readonly dialect: StoreDialect;

  /** The background refresh schedule: claims, retries, next times (see accountSchedule.ts). */
  readonly scheduling: AccountScheduleStore;
  /** Raw ciphertexts, for key rotation only (see ciphertextStore.ts). */
  readonly ciphertexts: CiphertextStore;

  /** Tokens recently decrypted, so that the hot path reads the row but does not decrypt it again. */
  private readonly opened: OpenedTokens;
  /** Rows to accounts and tokens to ciphertexts (see accountCodec.ts). */
  private readonly codec: AccountCodec;

  constructor(
    private readonly store: StoreDatabase,
    private readonly cipher: TokenCipher,
    private readonly schedule: RefreshSchedule | null = null,
    options: { batching?: boolean; opened?: OpenedTokens } = {},
  ) {
    this.dialect = dialectOf(store);
    this.scheduling = new AccountScheduleStore(store, this.dialect, schedule);
    this.ciphertexts = new CiphertextStore(store);
    this.opened = options.opened ?? new OpenedTokens();
    this.codec = new AccountCodec(cipher, this.opened);
    const batching = options.batching ?? true;
    // One batch of each kind on the wire (PostgreSQL) or with the writer thread (SQLite) at a
    // time; what arrives meanwhile waits for the next one. Measured in the refresh storm: fewer,
    // larger statements cut PostgreSQL's CPU by a quarter and the wall time by a tenth, and on
    // SQLite they are fewer commits.
    const inFlight = this.dialect.oneBatchInFlight(store) ? 1 : Number.POSITIVE_INFINITY;
    // A statement touches an account's row once: two calls for one account never share a batch.
    const perAccount = <Input extends { id: string }, Output>(run: (inputs: Input[]) => Promise<Output[]>) =>
      batching ? new Batcher(run, 200, (input: Input) => input.id, inFlight) : null;
    this.leaseBatcher = perAccount((requests: LeaseRequest[]) => this.takeLeases(requests));
    this.saveBatcher = perAccount((requests: SaveRequest[]) => this.saveBatch(requests));
    this.readBatcher =
      batching && this.dialect.batchesReadsById
        ? new Batcher((ids) => this.readBatch(ids), 200, null, inFlight)
        : null;
  }

  private get db() {
    return this.store.db;
  }

  /** Waits for the batched reads and writes already asked for (before closing the database). */
  async drain(): Promise<void> {
    await Promise.all([this.leaseBatcher?.drain(), this.saveBatcher?.drain(), this.readBatcher?.drain()]);
  }

  /**
   * Runs `work` in one transaction with a repository (and the transaction's database) bound to it:
   * all of it is committed, or none.
   */
  async transaction<T>(work: (accounts: AccountRepository, store: StoreDatabase) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      const bound: StoreDatabase = { ...this.store, db: trx };
      return work(
        new AccountRepository(bound, this.cipher, this.schedule, { batching: false, opened: this.opened }),
        bound,
      );
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
        alternate_external_id: input.alternateExternalId ?? null,
        display_name: input.displayName,
        oauth_access_token: this.codec.seal(input.accessToken, id, 'access_token'),
        oauth_refresh_token: this.codec.seal(input.refreshToken, id, 'refresh_token'),
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
        // From the tokens' times, in this process's clock on purpose (see scheduleFor).
        next_refresh_at:
          (input.status ?? 'active') === 'active'
            ? this.scheduling.scheduleFor(scheduleInputOfAccount({ ...input, lastRefreshAt: null }), now)
            : null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    return (await this.findById(id))!;
  }

  async findById(id: string): Promise<SocialAccount | null> {
    const row = this.readBatcher ? await this.readBatcher.submit(id) : await this.readOne(id);
    return row ? this.codec.toAccount(row) : null;
  }

  /**
   * The hot path's statement, compiled by Kysely once per repository and run with each id: building
   * and compiling the query anew cost about as much as SQLite running it.
   */
  private readOneSql: string | null = null;
  private async readOne(id: string): Promise<Row | undefined> {
    this.readOneSql ??= this.db.selectFrom('social_accounts').selectAll().where('id', '=', '').compile().sql;
    const { rows } = await this.db.executeQuery<Row>(CompiledQuery.raw(this.readOneSql, [id]));
    return rows[0];
  }

  /**
   * PostgreSQL: the ids as one array parameter, so that the statement's text (and so the server's
   * parse) is the same whatever the number of ids.
   */
  private async readBatch(ids: string[]): Promise<Array<Row | undefined>> {
    const unique = [...new Set(ids)];
    const rows = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where(sql<boolean>`id = any(cast(${unique} as text[]))`)
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id));
  }

  async findByExternalId(provider: ProviderName, externalAccountId: string): Promise<SocialAccount | null> {
    const row = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where('provider', '=', provider)
      .where('external_account_id', '=', externalAccountId)
      .executeTakeFirst();
    return row ? this.codec.toAccount(row) : null;
  }

  /**
   * The account a platform callback names by either of its ids (external or alternate); the
   * external id wins when both match different accounts.
   */
  async findByAnyExternalId(
    provider: ProviderName,
    id: string,
  ): Promise<{ account: SocialAccount; matchedOn: 'external_id' | 'alternate_id' } | null> {
    const rows = await this.db
      .selectFrom('social_accounts')
      .selectAll()
      .where('provider', '=', provider)
      .where((eb) => eb.or([eb('external_account_id', '=', id), eb('alternate_external_id', '=', id)]))
      .limit(2)
      .execute();
    const row = rows.find((r) => r.external_account_id === id) ?? rows[0];
    if (!row) return null;
    return {
      account: this.codec.toAccount(row),
      matchedOn: row.external_account_id === id ? 'external_id' : 'alternate_id',
    };
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
  async list(filter: AccountListFilter = {}): Promise<AccountListing[]> {
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
    return rows.map((row) => this.codec.toListing(row));
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
   * in it too; with `event`, the ledger row is written in the same commit. Saves made at the same
   * moment share that commit.
   */
  async saveTokens(
    id: string,
    update: TokenUpdate,
    now: number,
    expectedVersion?: number,
    options: SaveTokensOptions = {},
  ): Promise<SocialAccount | null> {
    const request: SaveRequest = { id, update, now, expectedVersion, options };
    const row = this.saveBatcher
      ? await this.saveBatcher.submit(request)
      : (await this.saveBatch([request]))[0]!;
    if (row === null) return null;
    // Per caller, after the batch: the tokens just written are known, no need to decrypt them back
    // (a kept refresh token is decrypted, and only its own caller can fail on it).
    const saved = this.codec.toAccount(row, {
      known: { access_token: update.accessToken, refresh_token: update.refreshToken || undefined },
    });
    return options.current ? saved : this.scheduling.rescheduled(saved, now);
  }

  /**
   * One UPDATE for the whole batch, and one INSERT for its ledger rows, in one transaction. Each
   * row keeps its own compare-and-set: a row that moved on is simply not updated.
   */
  private async saveBatch(requests: SaveRequest[]): Promise<Array<Row | null>> {
    const rows = requests.map(({ id, update, now, expectedVersion, options }) => {
      const newRefreshToken = update.refreshToken !== null && update.refreshToken !== '';
      const current = options.current;
      // From the new tokens' times, in this process's clock on purpose (see scheduleFor).
      const nextRefreshAt = current
        ? this.scheduling.scheduleFor(
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
          )
        : null;
      return {
        id,
        expected_version: expectedVersion ?? null,
        access_token: this.codec.seal(update.accessToken, id, 'access_token'),
        expires_at: update.expiresAt,
        issued_at: update.tokenIssuedAt,
        refresh_token: newRefreshToken ? this.codec.seal(update.refreshToken!, id, 'refresh_token') : null,
        refresh_expires_at: newRefreshToken ? update.refreshTokenExpiresAt : null,
        scopes: update.scopes === null ? null : JSON.stringify(update.scopes),
        has_schedule: current ? 1 : 0,
        next_refresh_at: nextRefreshAt,
        now,
        release_owner: options.releaseLeaseOf ?? null,
        revive: options.reviveFromNeedsReauth ? 1 : 0,
      };
    });
    const input = this.dialect.inputRows(
      {
        id: 'text',
        expected_version: 'integer',
        access_token: 'text',
        expires_at: 'bigint',
        issued_at: 'bigint',
        refresh_token: 'text',
        refresh_expires_at: 'bigint',
        scopes: 'text',
        has_schedule: 'integer',
        next_refresh_at: 'bigint',
        now: 'bigint',
        release_owner: 'text',
        revive: 'integer',
      },
      rows,
    );
    // Values on the right of SET are the row's old ones: the lease is released only if the saver
    // still held it (a lapsed one someone else took stays theirs; the tokens are saved all the
    // same, the platform has already issued them).
    const update = sql`
      update social_accounts set
        oauth_access_token = input.access_token,
        oauth_expires_at = input.expires_at,
        token_issued_at = input.issued_at,
        oauth_refresh_token = coalesce(input.refresh_token, social_accounts.oauth_refresh_token),
        oauth_refresh_expires_at = case when input.refresh_token is null
          then social_accounts.oauth_refresh_expires_at else input.refresh_expires_at end,
        oauth_scopes = coalesce(input.scopes, social_accounts.oauth_scopes),
        status = 'active',
        last_refresh_at = input.now,
        last_error = null,
        updated_at = input.now,
        refresh_failures = 0,
        next_refresh_at = case when input.has_schedule = 1
          then input.next_refresh_at else social_accounts.next_refresh_at end,
        version = social_accounts.version + 1,
        refresh_lease_owner = case when social_accounts.refresh_lease_owner = input.release_owner
          then null else social_accounts.refresh_lease_owner end,
        refresh_lease_until = case when social_accounts.refresh_lease_owner = input.release_owner
          then null else social_accounts.refresh_lease_until end`;
    const compareAndSet = sql`
      social_accounts.id = input.id
      and (input.expected_version is null
           or (social_accounts.version = input.expected_version
               and (social_accounts.status = 'active'
                    or (input.revive = 1 and social_accounts.status = 'needs_reauth'))))`;
    const events = new Map(
      requests.flatMap(({ id, now, options }) =>
        options.event ? [[id, ledgerRow(options.event, now)]] : [],
      ),
    );
    const savedRows = await this.dialect.saveTokens(this.store, {
      input,
      update,
      compareAndSet,
      events: [...events.values()],
    });
    const saved = new Map(savedRows.map((row) => [row.id, row]));
    return requests.map(({ id }) => saved.get(id) ?? null);
  }

  /**
   * Replaces the grant on reconnect: a new grant is a new start, except that a grant without a
   * refresh token (Google omits it when the user had consented before) keeps the stored one and
   * its expiry. Overwriting it with NULL would leave an access token that dies within the hour.
   */
  async replaceGrant(
    id: string,
    grant: Omit<NewAccount, 'id' | 'provider' | 'externalAccountId' | 'status'>,
    now: number,
  ): Promise<SocialAccount> {
    const newRefreshToken = grant.refreshToken !== null && grant.refreshToken !== '';
    await this.db
      .updateTable('social_accounts')
      .set((eb) => ({
        owner_id: grant.ownerId,
        // A reconnect that learned no other id keeps the one stored.
        ...(grant.alternateExternalId ? { alternate_external_id: grant.alternateExternalId } : {}),
        display_name: grant.displayName,
        oauth_access_token: this.codec.seal(grant.accessToken, id, 'access_token'),
        ...(newRefreshToken
          ? {
              oauth_refresh_token: this.codec.seal(grant.refreshToken, id, 'refresh_token'),
              oauth_refresh_expires_at: grant.refreshTokenExpiresAt,
            }
          : {}),
        oauth_expires_at: grant.expiresAt,
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
    return this.scheduling.rescheduled((await this.findById(id))!, now);
  }

  /**
   * Moves an account out of `active`. Revoking also deletes its tokens. With `expectedVersion`,
   * changes nothing (and returns false) if the row moved on meanwhile. With `event`, its ledger row
   * (and, for needs_reauth and revoked, its outbox row: the outgoing notification) is written in the
   * same commit as the status, and only if the status changed.
   */
  async setStatus(
    id: string,
    status: AccountStatus,
    lastError: string | null,
    now: number,
    expectedVersion?: number,
    event?: NewOAuthEvent,
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
    const write = async (db: typeof this.db) => {
      let query = db
        .updateTable('social_accounts')
        .set((eb) => ({ ...values, version: eb('version', '+', 1) }))
        .where('id', '=', id);
      if (expectedVersion !== undefined) query = query.where('version', '=', expectedVersion);
      const result = await query.executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return false;
      if (event) await writeLedgerEvent(db, event, now);
      return true;
    };
    const changed = event ? await inTransaction(this.db, write) : await write(this.db);
    if (!changed) return false;
    if (status === 'active') {
      const account = await this.findById(id);
      if (account) await this.scheduling.rescheduled(account, now);
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
   * Takes the account's refresh lease if nobody holds a live one, and returns the row under it (or
   * null). One conditional UPDATE, atomic on both databases: of many processes racing, exactly one
   * gets the row back. The lease expires by itself, so a refresher that crashed blocks the account
   * for at most `leaseMs`. Takes made at the same moment share one statement.
   */
  async tryAcquireRefreshLease(
    id: string,
    owner: string,
    now: number,
    leaseMs: number,
  ): Promise<TakenLease | null> {
    const request: LeaseRequest = { id, owner, now, until: now + leaseMs };
    const row = this.leaseBatcher
      ? await this.leaseBatcher.submit(request)
      : (await this.takeLeases([request]))[0]!;
    if (row === null) return null;
    let account: SocialAccount;
    try {
      // Decrypted per caller, after the batch: one row this process cannot decrypt fails its own
      // caller only.
      account = this.codec.toAccount(row);
    } catch (error) {
      // The lease is ours but nobody will use it: give it back rather than let it block the
      // account (and look abandoned to the next refresher).
      await this.releaseRefreshLease(id, owner).catch(() => {});
      throw error;
    }
    // In the caller's clock: on PostgreSQL the row holds the database's (see the dialect's takeLeases).
    return { account, until: request.until, previousOwner: row.previous_owner };
  }

  /** The rows whose lease each request took (raw: decrypting is the caller's), or null. */
  private async takeLeases(requests: LeaseRequest[]): Promise<Array<LeasedRow | null>> {
    const taken = await this.dialect.takeLeases(this.store, requests);
    return requests.map((request) => {
      const row = taken.get(request.id);
      return row && row.refresh_lease_owner === request.owner ? row : null;
    });
  }

  /** Extends a lease this owner still holds; false when it lapsed and may be someone else's now. */
  async tryRenewRefreshLease(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    // On PostgreSQL by the database's clock, like the take.
    const current = this.dialect.leaseClock(now);
    const result = await this.db
      .updateTable('social_accounts')
      .set({ refresh_lease_until: sql<number>`${current} + ${leaseMs}` })
      .where('id', '=', id)
      .where('refresh_lease_owner', '=', owner)
      .where('refresh_lease_until', '>', current)
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

  async countActive(): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}
