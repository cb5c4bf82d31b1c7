import { randomUUID } from 'node:crypto';
import { CompiledQuery, type Selectable, sql } from 'kysely';
import type { TokenCipher, TokenField } from '../crypto/tokenCipher.js';
import type { AccountStatus, SocialAccount } from '../domain/account.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { ProviderName } from '../domain/providerName.js';
import { Batcher } from './batcher.js';
import type { StoreDatabase } from './database.js';
import { inTransaction, ledgerRow, writeLedgerEvent } from './ledgerRepository.js';
import type { SocialAccountsTable } from './schema.js';
import type { StatementCache } from './sqliteConnection.js';
import type { SqliteWriter } from './sqliteWriter.js';
import {
  type CompiledStatement,
  type LeaseWrite,
  type SaveWrite,
  type SqliteRow,
  saveTokens as saveSqliteTokens,
  takeLeases as takeSqliteLeases,
} from './sqliteWrites.js';

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

type Row = Selectable<SocialAccountsTable>;

/** What crosses to the writer thread: the SQL and its parameters, not Kysely's query tree. */
const compiled = (query: CompiledStatement): CompiledStatement => ({
  sql: query.sql,
  parameters: query.parameters,
});

/**
 * PostgreSQL's clock in epoch ms: what refresh leases are measured by there (the statement's
 * start, the same for every row of a batch).
 */
const POSTGRES_NOW_MS = sql<number>`cast(extract(epoch from now()) * 1000 as bigint)`;

/** A row as a lease take returns it, with who held the lease before. */
type LeasedRow = Row & { previous_owner: string | null };

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
 * Plaintexts of recently decrypted tokens: for each of the last 10,000 accounts read or written, the
 * last ciphertext of each column and its plaintext. A row whose ciphertext is unchanged needs no
 * second AES-GCM decryption; anything else (a new token, a ciphertext copied in from another row,
 * a rotated key) does not match and is decrypted and authenticated as always. Looked up by account
 * id, then compared whole: hashing the ciphertexts themselves cost more than half a decryption.
 * Oldest account out first. It holds nothing the process would not hold anyway while serving the
 * token; it never leaves memory.
 */
export class OpenedTokens {
  private readonly accounts = new Map<
    string,
    Partial<Record<TokenField, { ciphertext: string; plaintext: string }>>
  >();

  constructor(private readonly capacity = 10_000) {}

  open(accountId: string, field: TokenField, ciphertext: string, decrypt: () => string): string {
    const opened = this.accounts.get(accountId)?.[field];
    if (opened !== undefined && opened.ciphertext === ciphertext) return opened.plaintext;
    const plaintext = decrypt();
    this.remember(accountId, field, ciphertext, plaintext);
    return plaintext;
  }

  /** A token this process has just decrypted, or encrypted and stored. */
  remember(accountId: string, field: TokenField, ciphertext: string, plaintext: string): void {
    let entry = this.accounts.get(accountId);
    if (entry === undefined) {
      if (this.accounts.size >= this.capacity) this.accounts.delete(this.accounts.keys().next().value!);
      entry = {};
      this.accounts.set(accountId, entry);
    }
    entry[field] = { ciphertext, plaintext };
  }
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

interface LeaseRequest {
  id: string;
  owner: string;
  now: number;
  until: number;
}

interface SaveRequest {
  id: string;
  update: TokenUpdate;
  now: number;
  expectedVersion: number | undefined;
  options: SaveTokensOptions;
}

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

  /** Tokens recently decrypted, so that the hot path reads the row but does not decrypt it again. */
  private readonly opened: OpenedTokens;

  constructor(
    private readonly store: StoreDatabase,
    private readonly cipher: TokenCipher,
    private readonly schedule: RefreshSchedule | null = null,
    options: { batching?: boolean; opened?: OpenedTokens } = {},
  ) {
    this.opened = options.opened ?? new OpenedTokens();
    const batching = options.batching ?? true;
    // One batch of each kind on the wire (PostgreSQL) or with the writer thread (SQLite) at a
    // time; what arrives meanwhile waits for the next one. Measured in the refresh storm: fewer,
    // larger statements cut PostgreSQL's CPU by a quarter and the wall time by a tenth, and on
    // SQLite they are fewer commits.
    const inFlight = store.kind === 'postgres' || store.writer !== undefined ? 1 : Number.POSITIVE_INFINITY;
    // A statement touches an account's row once: two calls for one account never share a batch.
    const perAccount = <Input extends { id: string }, Output>(run: (inputs: Input[]) => Promise<Output[]>) =>
      batching ? new Batcher(run, 200, (input: Input) => input.id, inFlight) : null;
    this.leaseBatcher = perAccount((requests: LeaseRequest[]) => this.takeLeases(requests));
    this.saveBatcher = perAccount((requests: SaveRequest[]) => this.saveBatch(requests));
    this.readBatcher =
      batching && store.kind === 'postgres'
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
    const row = this.readBatcher ? await this.readBatcher.submit(id) : await this.readOne(id);
    return row ? this.toAccount(row) : null;
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
    return row ? this.toAccount(row) : null;
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
      account: this.toAccount(row),
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
    const saved = this.toAccount(row, {
      decrypt: true,
      known: { access_token: update.accessToken, refresh_token: update.refreshToken || undefined },
    });
    return options.current ? saved : this.rescheduled(saved, now);
  }

  /**
   * One UPDATE for the whole batch, and one INSERT for its ledger rows, in one transaction. Each
   * row keeps its own compare-and-set: a row that moved on is simply not updated.
   */
  private async saveBatch(requests: SaveRequest[]): Promise<Array<Row | null>> {
    const rows = requests.map(({ id, update, now, expectedVersion, options }) => {
      const newRefreshToken = update.refreshToken !== null && update.refreshToken !== '';
      const current = options.current;
      const nextRefreshAt = current
        ? this.scheduleFor(
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
        access_token: this.seal(update.accessToken, id, 'access_token'),
        expires_at: update.expiresAt,
        issued_at: update.tokenIssuedAt,
        refresh_token: newRefreshToken ? this.seal(update.refreshToken!, id, 'refresh_token') : null,
        refresh_expires_at: newRefreshToken ? update.refreshTokenExpiresAt : null,
        scopes: update.scopes === null ? null : JSON.stringify(update.scopes),
        has_schedule: current ? 1 : 0,
        next_refresh_at: nextRefreshAt,
        now,
        release_owner: options.releaseLeaseOf ?? null,
        revive: options.reviveFromNeedsReauth ? 1 : 0,
      };
    });
    const input = this.inputRows(
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
    let savedRows: Row[];
    if (this.store.kind === 'postgres') {
      // One statement, so one round trip and one commit: the rows are locked in id order first (two
      // batches that overlap, two savers of one account after a lease lapsed, queue instead of
      // deadlocking), and the ledger rows are inserted for the rows actually saved.
      const ledger = this.inputRows(
        {
          id: 'text',
          account_id: 'text',
          type: 'text',
          reason: 'text',
          provider_error_code: 'text',
          detail: 'text',
          created_at: 'bigint',
        },
        [...events.values()].map((event) => ({
          id: event.id,
          account_id: event.account_id,
          type: event.type,
          reason: event.reason ?? null,
          provider_error_code: event.provider_error_code ?? null,
          detail: event.detail ?? null,
          created_at: event.created_at,
        })),
      );
      const result = await sql<Row>`
        with input as (${input}),
        locked as materialized (
          select social_accounts.id from social_accounts join input on input.id = social_accounts.id
          order by social_accounts.id for update of social_accounts),
        saved as (
          ${update}
          from input join locked on locked.id = input.id
          where ${compareAndSet}
          returning social_accounts.*),
        logged as (
          insert into oauth_events (id, account_id, type, reason, provider_error_code, detail, created_at)
          select ledger.* from (${ledger}) as ledger join saved on saved.id = ledger.account_id)
        select * from saved`.execute(this.db);
      savedRows = result.rows;
    } else {
      // SQLite forbids "table.*" in RETURNING and returns the target's columns for "*".
      const write: SaveWrite = {
        update: compiled(
          sql`
          with input as (${input})
          ${update}
          from input
          where ${compareAndSet}
          returning *`.compile(this.db),
        ),
        events: [...events.values()] as SqliteRow[],
      };
      savedRows = (await this.sqliteWrite(
        (writer) => writer.saveTokens(write),
        (prepared) => saveSqliteTokens(prepared, write),
      )) as Row[];
    }
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
        oauth_access_token: this.seal(grant.accessToken, id, 'access_token'),
        ...(newRefreshToken
          ? {
              oauth_refresh_token: this.seal(grant.refreshToken, id, 'refresh_token'),
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
    return this.rescheduled((await this.findById(id))!, now);
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
      account = this.toAccount(row);
    } catch (error) {
      // The lease is ours but nobody will use it: give it back rather than let it block the
      // account (and look abandoned to the next refresher).
      await this.releaseRefreshLease(id, owner).catch(() => {});
      throw error;
    }
    // In the caller's clock: on PostgreSQL the row holds the database's (see takeLeasesOnPostgres).
    return { account, until: request.until, previousOwner: row.previous_owner };
  }

  /** The rows whose lease each request took (raw: decrypting is the caller's), or null. */
  private async takeLeases(requests: LeaseRequest[]): Promise<Array<LeasedRow | null>> {
    const taken =
      this.store.kind === 'postgres'
        ? await this.takeLeasesOnPostgres(requests)
        : await this.takeLeasesOnSqlite(requests);
    return requests.map((request) => {
      const row = taken.get(request.id);
      return row && row.refresh_lease_owner === request.owner ? row : null;
    });
  }

  /**
   * One statement. Rows another transaction is writing right now are skipped, not waited for:
   * their lease is not taken this time (the caller watches the row instead), and two batches that
   * overlap never wait on each other. The lock also reads who held the lease before, atomically.
   */
  private async takeLeasesOnPostgres(requests: LeaseRequest[]) {
    // The database's clock, not the caller's: processes on several machines share these leases,
    // and one whose clock runs ahead must not see a live lease as lapsed (issue 10, item 4). Only
    // the lease's length comes from the caller.
    const input = this.inputRows(
      { id: 'text', owner: 'text', lease_ms: 'bigint' },
      requests.map((request) => ({
        id: request.id,
        owner: request.owner,
        lease_ms: request.until - request.now,
      })),
    );
    const result = await sql<LeasedRow>`
      with input as (${input}),
      clock as (select ${POSTGRES_NOW_MS} as now),
      locked as materialized (
        select social_accounts.id, social_accounts.refresh_lease_owner as previous_owner
        from social_accounts join input on input.id = social_accounts.id cross join clock
        where social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= clock.now
        for update of social_accounts skip locked)
      update social_accounts
        set refresh_lease_owner = input.owner, refresh_lease_until = clock.now + input.lease_ms
      from input join locked on locked.id = input.id cross join clock
      where social_accounts.id = input.id
        and (social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= clock.now)
      returning social_accounts.*, locked.previous_owner`.execute(this.db);
    return new Map(result.rows.map((row) => [row.id, row]));
  }

  /**
   * One IMMEDIATE transaction: the read of who held each lease and the take cannot be split by
   * another process. The write lock is waited for on the writer thread, never on the event loop
   * (better-sqlite3 waits synchronously).
   */
  private async takeLeasesOnSqlite(requests: LeaseRequest[]) {
    const ids = JSON.stringify([...new Set(requests.map((request) => request.id))]);
    const input = this.inputRows({ id: 'text', owner: 'text', now: 'bigint', until: 'bigint' }, requests);
    const write: LeaseWrite = {
      states: compiled(
        sql`select id, refresh_lease_owner from social_accounts where id in (select value from json_each(${ids}))`.compile(
          this.db,
        ),
      ),
      // SQLite forbids "table.*" in RETURNING and returns the target's columns for "*".
      take: compiled(
        sql`
        with input as (${input})
        update social_accounts
          set refresh_lease_owner = input.owner, refresh_lease_until = input.until
        from input
        where social_accounts.id = input.id
          and (social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= input.now)
        returning *`.compile(this.db),
      ),
    };
    const outcome = await this.sqliteWrite(
      (writer) => writer.takeLeases(write),
      (prepared) => takeSqliteLeases(prepared, write),
    );
    const before = new Map(
      outcome.states.map((state) => [state.id as string, state.refresh_lease_owner as string | null]),
    );
    return new Map(
      (outcome.rows as Row[]).map((row) => [row.id, { ...row, previous_owner: before.get(row.id) ?? null }]),
    );
  }

  /**
   * A batched SQLite write: on the writer thread, or on the service's own connection inside the
   * repository transaction that holds it (or one of its own, so that Kysely keeps every other
   * statement out while these run).
   */
  private async sqliteWrite<T>(
    onWriter: (writer: SqliteWriter) => Promise<T>,
    onConnection: (prepared: StatementCache) => T,
  ): Promise<T> {
    if (this.store.writer !== undefined && !this.db.isTransaction) return onWriter(this.store.writer);
    const run = () => onConnection(this.store.sqlite!);
    return this.db.isTransaction ? run() : this.db.transaction().execute(async () => run());
  }

  /** Extends a lease this owner still holds; false when it lapsed and may be someone else's now. */
  async tryRenewRefreshLease(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    // On PostgreSQL by the database's clock, like the take.
    const current = this.store.kind === 'postgres' ? POSTGRES_NOW_MS : sql<number>`${now}`;
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

  /**
   * A batch's per-row values as a relation, passed as one JSON parameter: the statement's text does
   * not grow with the batch (PostgreSQL parses it once per batch, SQLite keeps it prepared), and
   * no value is ever spliced into SQL. Column names and types are ours, never input.
   */
  private inputRows<Columns extends Record<string, 'text' | 'integer' | 'bigint'>>(
    columns: Columns,
    rows: Array<{ [Name in keyof Columns]: string | number | null }>,
  ) {
    const names = Object.keys(columns);
    const json = JSON.stringify(rows);
    if (this.store.kind === 'postgres') {
      const definition = names.map((name) => `${name} ${columns[name]}`).join(', ');
      return sql`select * from jsonb_to_recordset(cast(${json} as jsonb)) as input_rows(${sql.raw(definition)})`;
    }
    return sql`select ${sql.raw(names.map((name) => `value ->> '${name}' as ${name}`).join(', '))} from json_each(${json})`;
  }

  private toAccount(
    row: Row,
    options: { decrypt: boolean; known?: Partial<Record<TokenField, string>> } = { decrypt: true },
  ): SocialAccount {
    const open = (value: string | null, field: TokenField): string | null => {
      if (value === null) return null;
      // Listings never decrypt: a non-null marker is enough to say "has a token".
      if (!options.decrypt) return '[encrypted]';
      const known = options.known?.[field];
      if (known !== undefined) {
        this.opened.remember(row.id, field, value, known);
        return known;
      }
      return this.opened.open(row.id, field, value, () =>
        this.cipher.decrypt(value, { accountId: row.id, field }),
      );
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
