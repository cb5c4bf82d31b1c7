import type { Kysely, Selectable, Updateable } from 'kysely';
import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { NewOAuthEvent, OAuthEventType } from '../domain/ledger.js';
import type { ProviderName } from '../domain/providerName.js';
import {
  type Publication,
  type PublicationError,
  type PublicationRequest,
  type PublicationStatus,
  type ResumableState,
  WORKABLE_STATUSES,
} from '../domain/publication.js';
import type { StoreDatabase } from './database.js';
import { dialectOf } from './dialect.js';
import { ledgerRow } from './ledgerRepository.js';
import { PublicationCiphertextStore } from './publicationCiphertexts.js';
import type { Database, PublicationsTable } from './schema.js';

type Row = Selectable<PublicationsTable>;

export interface NewPublication {
  id: string;
  accountId: string;
  provider: ProviderName;
  request: PublicationRequest;
  mediaPath: string | null;
  mediaOwned: boolean;
  sourceUrl: string | null;
  totalBytes: number | null;
  idempotencyKey: string | null;
}

export type InsertOutcome =
  | { kind: 'created'; publication: Publication }
  /** Another publication of the account already has this idempotency key: that one stands. */
  | { kind: 'duplicate'; publication: Publication };

/** Progress a lease holder writes as the platform confirms it. */
export interface ProgressUpdate {
  status?: PublicationStatus;
  bytesSent?: number;
  state?: ResumableState;
  platformPostId?: string | null;
  platformRef?: string | null;
  url?: string | null;
}

/** How a lease holder leaves a publication: ended, or handed back to be taken again later. */
export interface LeaseEnd {
  status: PublicationStatus;
  /** Set on final statuses. */
  finished: boolean;
  nextAttemptAt: number | null;
  attempts?: number;
  error?: PublicationError | null;
  platformPostId?: string | null;
  platformRef?: string | null;
  url?: string | null;
  bytesSent?: number;
}

export interface PublicationListFilter {
  accountId?: string;
  status?: PublicationStatus;
  /** Newest first; the page after this (created_at, id). */
  before?: { createdAt: number; id: string };
  limit: number;
}

/** Detail of the ledger row a state change writes (never a secret). */
export interface PublicationEventInput {
  type: OAuthEventType;
  reason?: string | null;
  providerErrorCode?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * The one place that reads and writes `publications`. The resumable state and the source URL are
 * sealed with the token keyring, bound to the publication's id and column, on the way in; nothing
 * above this module sees a ciphertext.
 *
 * Writes by a worker are fenced by its lease (`lease_owner` in the WHERE; a claim writes the new
 * owner): a worker that stalled past its lease and was replaced cannot write state the new holder
 * has moved past, and finds out (false) before it sends anything more to the platform. A lapsed
 * lease nobody took yet is still its holder's: nobody else can have acted on the publication.
 */
export class PublicationRepository {
  /** Raw ciphertexts, for key rotation only (see publicationCiphertexts.ts). */
  readonly ciphertexts: PublicationCiphertextStore;

  constructor(
    private readonly store: StoreDatabase,
    private readonly cipher: TokenCipher,
  ) {
    this.ciphertexts = new PublicationCiphertextStore(store);
  }

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  /**
   * Inserts a queued publication and its `publication_queued` ledger row in one commit. A second
   * insert with the same idempotency key for the account (a retry, or a concurrent duplicate) loses
   * on the unique constraint and gets the first one back.
   */
  async insert(input: NewPublication, now: number): Promise<InsertOutcome> {
    if (input.idempotencyKey !== null) {
      const existing = await this.findByIdempotencyKey(input.accountId, input.idempotencyKey);
      if (existing) return { kind: 'duplicate', publication: existing };
    }
    const request = input.request;
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('publications')
          .values({
            id: input.id,
            account_id: input.accountId,
            provider: input.provider,
            status: 'queued',
            title: request.title,
            request_metadata: JSON.stringify({
              description: request.description,
              privacy: request.privacy,
              mode: request.mode,
              options: request.options,
              contentType: request.contentType,
            }),
            media_path: input.mediaPath,
            media_owned: input.mediaOwned ? 1 : 0,
            source_url:
              input.sourceUrl === null
                ? null
                : this.cipher.encrypt(input.sourceUrl, { accountId: input.id, field: 'source_url' }),
            total_bytes: input.totalBytes,
            bytes_sent: 0,
            resumable_state: null,
            platform_post_id: null,
            platform_ref: null,
            url: null,
            error_code: null,
            error_message: null,
            retry_at: null,
            idempotency_key: input.idempotencyKey,
            attempts: 0,
            next_attempt_at: now,
            lease_owner: null,
            lease_until: null,
            media_link_hash: null,
            media_link_token: null,
            media_link_expires_at: null,
            created_at: now,
            updated_at: now,
            finished_at: null,
          })
          .execute();
        await trx
          .insertInto('oauth_events')
          .values(
            ledgerRow(
              eventOf(input.accountId, input.id, input.provider, {
                type: 'publication_queued',
                detail: { totalBytes: input.totalBytes },
              }),
              now,
            ),
          )
          .execute();
      });
    } catch (error) {
      if (input.idempotencyKey !== null && isUniqueViolation(error)) {
        const existing = await this.findByIdempotencyKey(input.accountId, input.idempotencyKey);
        if (existing) return { kind: 'duplicate', publication: existing };
      }
      throw error;
    }
    return { kind: 'created', publication: (await this.findById(input.id))! };
  }

  async findById(id: string): Promise<Publication | null> {
    const row = await this.db.selectFrom('publications').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? this.toPublication(row) : null;
  }

  async findByIdempotencyKey(accountId: string, key: string): Promise<Publication | null> {
    const row = await this.db
      .selectFrom('publications')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();
    return row ? this.toPublication(row) : null;
  }

  /** Newest first, keyset-paginated on (created_at, id). */
  async list(filter: PublicationListFilter): Promise<Publication[]> {
    let query = this.db
      .selectFrom('publications')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit);
    if (filter.accountId !== undefined) query = query.where('account_id', '=', filter.accountId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    const before = filter.before;
    if (before !== undefined) {
      query = query.where((eb) =>
        eb.or([
          eb('created_at', '<', before.createdAt),
          eb.and([eb('created_at', '=', before.createdAt), eb('id', '<', before.id)]),
        ]),
      );
    }
    return (await query.execute()).map((row) => this.toPublication(row));
  }

  /**
   * Takes up to `limit` publications that are due (queued, interrupted, or waiting for a poll) and
   * whose lease is free or lapsed, under a lease for `owner`. On PostgreSQL `FOR UPDATE SKIP LOCKED`
   * lets workers claim side by side without waiting on each other's rows; on SQLite the one
   * statement runs under the database's write lock.
   */
  async claimDue(options: {
    owner: string;
    now: number;
    leaseMs: number;
    limit: number;
    providers?: readonly ProviderName[];
  }): Promise<Publication[]> {
    const { owner, now, leaseMs, limit } = options;
    if (options.providers !== undefined && options.providers.length === 0) return [];
    const skipLocked = dialectOf(this.store).supportsSkipLocked;
    const rows = await this.db
      .updateTable('publications')
      .set({ lease_owner: owner, lease_until: now + leaseMs })
      .where('id', 'in', (eb) => {
        let due = eb
          .selectFrom('publications')
          .select('id')
          .where('status', 'in', [...WORKABLE_STATUSES])
          .where('next_attempt_at', '<=', now)
          .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<=', now)]))
          .orderBy('next_attempt_at')
          .limit(limit);
        if (options.providers !== undefined) due = due.where('provider', 'in', [...options.providers]);
        return skipLocked ? due.forUpdate().skipLocked() : due;
      })
      .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<=', now)]))
      .returningAll()
      .execute();
    return rows.map((row) => this.toPublication(row));
  }

  /** Takes one publication's lease if it is free (the library runs its own upload at once). */
  async claimById(id: string, owner: string, now: number, leaseMs: number): Promise<Publication | null> {
    const row = await this.db
      .updateTable('publications')
      .set({ lease_owner: owner, lease_until: now + leaseMs })
      .where('id', '=', id)
      .where('status', 'in', [...WORKABLE_STATUSES])
      .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<=', now)]))
      .returningAll()
      .executeTakeFirst();
    return row ? this.toPublication(row) : null;
  }

  async renewLease(id: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    const result = await this.db
      .updateTable('publications')
      .set({ lease_until: now + leaseMs })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Commits progress under the lease (the resumable state before the client goes on), with a
   * ledger row in the same commit when the status changes. False: the lease is no longer ours.
   */
  async saveProgress(
    publication: Pick<Publication, 'id' | 'accountId' | 'provider'>,
    owner: string,
    now: number,
    update: ProgressUpdate,
    event: PublicationEventInput | null,
  ): Promise<boolean> {
    const values: Updateable<PublicationsTable> = { updated_at: now };
    if (update.status !== undefined) values.status = update.status;
    if (update.bytesSent !== undefined) values.bytes_sent = update.bytesSent;
    if (update.state !== undefined) {
      values.resumable_state = this.cipher.encrypt(JSON.stringify(update.state), {
        accountId: publication.id,
        field: 'resumable_state',
      });
    }
    if (update.platformPostId !== undefined) values.platform_post_id = update.platformPostId;
    if (update.platformRef !== undefined) values.platform_ref = update.platformRef;
    if (update.url !== undefined) values.url = update.url;
    return this.fencedWrite(publication, owner, now, values, event);
  }

  /** Ends the lease: a final status, or handed back with the time it should be taken again. */
  async endLease(
    publication: Pick<Publication, 'id' | 'accountId' | 'provider'>,
    owner: string,
    now: number,
    end: LeaseEnd,
    event: PublicationEventInput | null,
  ): Promise<boolean> {
    const values: Updateable<PublicationsTable> = {
      status: end.status,
      updated_at: now,
      lease_owner: null,
      lease_until: null,
      next_attempt_at: end.nextAttemptAt,
    };
    if (end.attempts !== undefined) values.attempts = end.attempts;
    if (end.error !== undefined) {
      values.error_code = end.error?.code ?? null;
      values.error_message = end.error?.message ?? null;
      values.retry_at = end.error?.retryAt ?? null;
    }
    if (end.platformPostId !== undefined) values.platform_post_id = end.platformPostId;
    if (end.platformRef !== undefined) values.platform_ref = end.platformRef;
    if (end.url !== undefined) values.url = end.url;
    if (end.bytesSent !== undefined) values.bytes_sent = end.bytesSent;
    if (end.finished) {
      values.finished_at = now;
      // The state is a capability: nothing needs it once the publication has ended.
      values.resumable_state = null;
      values.media_link_hash = null;
      values.media_link_token = null;
      values.media_link_expires_at = null;
    }
    return this.fencedWrite(publication, owner, now, values, event);
  }

  /** Bytes confirmed so far, for readers; best effort under the lease, no ledger row. */
  async recordBytesSent(id: string, owner: string, bytesSent: number, now: number): Promise<void> {
    await this.db
      .updateTable('publications')
      .set({ bytes_sent: bytesSent, updated_at: now })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .execute();
  }

  /** Serves the media at a link whose token hashes to `hash` until `expiresAt` (Instagram). */
  async setMediaLink(id: string, token: string, hash: string, expiresAt: number): Promise<void> {
    await this.db
      .updateTable('publications')
      .set({
        media_link_hash: hash,
        media_link_token: this.cipher.encrypt(token, { accountId: id, field: 'media_link' }),
        media_link_expires_at: expiresAt,
      })
      .where('id', '=', id)
      .execute();
  }

  /** The publication's live media link token, or null (none, or expired). */
  async liveMediaLink(id: string, now: number): Promise<{ token: string; expiresAt: number } | null> {
    const row = await this.db
      .selectFrom('publications')
      .select(['media_link_token', 'media_link_expires_at'])
      .where('id', '=', id)
      .where('media_link_expires_at', '>', now)
      .executeTakeFirst();
    if (!row?.media_link_token || row.media_link_expires_at === null) return null;
    return {
      token: this.cipher.decrypt(row.media_link_token, { accountId: id, field: 'media_link' }),
      expiresAt: Number(row.media_link_expires_at),
    };
  }

  async clearMediaLink(id: string): Promise<void> {
    await this.db
      .updateTable('publications')
      .set({ media_link_hash: null, media_link_token: null, media_link_expires_at: null })
      .where('id', '=', id)
      .execute();
  }

  /** The publication whose media link is this one and still alive, or null. */
  async findByMediaLink(hash: string, now: number): Promise<Publication | null> {
    const row = await this.db
      .selectFrom('publications')
      .selectAll()
      .where('media_link_hash', '=', hash)
      .where('media_link_expires_at', '>', now)
      .executeTakeFirst();
    return row ? this.toPublication(row) : null;
  }

  async countByStatus(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom('publications')
      .select(['status', (eb) => eb.fn.countAll<number | string>().as('n')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  }

  private async fencedWrite(
    publication: Pick<Publication, 'id' | 'accountId' | 'provider'>,
    owner: string,
    now: number,
    values: Updateable<PublicationsTable>,
    event: PublicationEventInput | null,
  ): Promise<boolean> {
    const write = async (db: Kysely<Database>) => {
      const result = await db
        .updateTable('publications')
        .set(values)
        .where('id', '=', publication.id)
        .where('lease_owner', '=', owner)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      if (event !== null) {
        await db
          .insertInto('oauth_events')
          .values(ledgerRow(eventOf(publication.accountId, publication.id, publication.provider, event), now))
          .execute();
      }
      return true;
    };
    if (event === null) return write(this.db);
    return this.db.transaction().execute((trx) => write(trx));
  }

  private toPublication(row: Row): Publication {
    const metadata = JSON.parse(row.request_metadata) as Omit<PublicationRequest, 'title'>;
    return {
      id: row.id,
      accountId: row.account_id,
      provider: row.provider as ProviderName,
      status: row.status as PublicationStatus,
      request: { title: row.title, ...metadata },
      mediaPath: row.media_path,
      mediaOwned: Number(row.media_owned) === 1,
      sourceUrl:
        row.source_url === null
          ? null
          : this.cipher.decrypt(row.source_url, { accountId: row.id, field: 'source_url' }),
      totalBytes: row.total_bytes === null ? null : Number(row.total_bytes),
      bytesSent: Number(row.bytes_sent),
      resumableState:
        row.resumable_state === null
          ? null
          : (JSON.parse(
              this.cipher.decrypt(row.resumable_state, { accountId: row.id, field: 'resumable_state' }),
            ) as ResumableState),
      platformPostId: row.platform_post_id,
      platformRef: row.platform_ref,
      url: row.url,
      error:
        row.error_code === null
          ? null
          : {
              code: row.error_code,
              message: row.error_message ?? row.error_code,
              retryAt: row.retry_at === null ? null : Number(row.retry_at),
            },
      idempotencyKey: row.idempotency_key,
      attempts: Number(row.attempts),
      nextAttemptAt: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
      leaseOwner: row.lease_owner,
      leaseUntil: row.lease_until === null ? null : Number(row.lease_until),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    };
  }
}

function eventOf(
  accountId: string,
  publicationId: string,
  provider: ProviderName,
  event: PublicationEventInput,
): NewOAuthEvent {
  return {
    accountId,
    type: event.type,
    reason: event.reason ?? null,
    providerErrorCode: event.providerErrorCode ?? null,
    detail: { publicationId, provider, ...event.detail },
  };
}

/** PostgreSQL 23505; SQLite SQLITE_CONSTRAINT_UNIQUE (or _PRIMARYKEY). */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
