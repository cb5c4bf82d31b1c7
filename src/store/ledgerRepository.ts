import { randomUUID } from 'node:crypto';
import type { Insertable, Kysely, Selectable } from 'kysely';
import {
  type NewOAuthEvent,
  type OAuthEvent,
  type OAuthEventType,
  PUBLICATION_EVENT_TYPES,
} from '../domain/ledger.js';
import { GRANT_CONFIRMED_TYPES } from '../domain/lossDetection.js';
import { NOTIFIED_EVENT_TYPES } from '../domain/notification.js';
import type { StoreDatabase } from './database.js';
import type { Database, OAuthEventsTable } from './schema.js';

export interface LedgerPage {
  events: OAuthEvent[];
  /** Pass back as `afterSeq` for the next page; null on the last page. */
  nextCursor: number | null;
}

/** The stored form of an event (also written by AccountRepository in the commit that saves tokens). */
export function ledgerRow(event: NewOAuthEvent, now: number): Insertable<OAuthEventsTable> {
  return {
    id: randomUUID(),
    account_id: event.accountId,
    type: event.type,
    reason: event.reason ?? null,
    provider_error_code: event.providerErrorCode ?? null,
    detail: event.detail ? JSON.stringify(event.detail) : null,
    created_at: now,
  };
}

/**
 * Writes a ledger event and, when its type is one that notifies (needs_reauth, revoked, expiring),
 * its outbox row with the same id, built from the account row as this commit sees it. Run it inside
 * the transaction that makes the change the event records: then the change, the event and the
 * notification are committed together or not at all, and no process can stop between them.
 *
 * With `expiresAt` (an `expiring` event) the outbox row is written only if none exists yet for that
 * account and expiry (a unique index): then nothing is written and null is returned, so that the
 * warning goes out once however many processes notice it.
 */
export async function writeLedgerEvent(
  db: Kysely<Database>,
  event: NewOAuthEvent,
  now: number,
  options: { expiresAt?: number } = {},
): Promise<string | null> {
  const row = ledgerRow(event, now);
  const type = NOTIFIED_EVENT_TYPES[event.type];
  if (type !== undefined) {
    const account = await db
      .selectFrom('social_accounts')
      .select(['owner_id', 'provider', 'external_account_id', 'display_name', 'status'])
      .where('id', '=', event.accountId)
      .executeTakeFirst();
    // An account deleted in the same breath has nobody left to tell.
    if (account) {
      const inserted = await db
        .insertInto('notification_outbox')
        .values({
          event_id: row.id,
          type,
          account_id: event.accountId,
          owner_id: account.owner_id,
          provider: account.provider,
          external_account_id: account.external_account_id,
          display_name: account.display_name,
          account_status: account.status,
          reason: event.reason ?? null,
          provider_error_code: event.providerErrorCode ?? null,
          expires_at: options.expiresAt ?? null,
          created_at: now,
          next_attempt_at: now,
        })
        .onConflict((conflict) => conflict.columns(['account_id', 'expires_at']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return null;
    }
  }
  await db.insertInto('oauth_events').values(row).execute();
  return row.id;
}

/** Runs `work` in a transaction, or in the one `db` already is. */
export function inTransaction<T>(
  db: Kysely<Database>,
  work: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

/** The append-only OAuth ledger. There is no update or delete here on purpose. */
export class LedgerRepository {
  constructor(private readonly store: StoreDatabase) {}

  /** Appends an event; one that notifies gets its outbox row in the same commit. */
  async append(event: NewOAuthEvent, now: number): Promise<void> {
    if (NOTIFIED_EVENT_TYPES[event.type] === undefined) {
      await this.store.db.insertInto('oauth_events').values(ledgerRow(event, now)).execute();
      return;
    }
    await inTransaction(this.store.db, (trx) => writeLedgerEvent(trx, event, now));
  }

  async list(filter: {
    accountId?: string;
    type?: OAuthEventType;
    afterSeq?: number;
    limit?: number;
  }): Promise<LedgerPage> {
    const limit = filter.limit ?? 50;
    let query = this.store.db
      .selectFrom('oauth_events')
      .selectAll()
      .orderBy('seq')
      .limit(limit + 1);
    if (filter.accountId !== undefined) query = query.where('account_id', '=', filter.accountId);
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    if (filter.afterSeq !== undefined) query = query.where('seq', '>', filter.afterSeq);
    const rows = await query.execute();
    const page = rows.slice(0, limit);
    return {
      events: page.map(toEvent),
      nextCursor: rows.length > limit ? Number(page.at(-1)!.seq) : null,
    };
  }

  /**
   * The account's most recent OAuth event, or null. Publication events (issue 13) are left out: the
   * token service reads this to know how the last refresh ended, and a publication written since
   * must not hide it.
   */
  async latest(accountId: string): Promise<OAuthEvent | null> {
    const row = await this.store.db
      .selectFrom('oauth_events')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('type', 'not in', [...PUBLICATION_EVENT_TYPES])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toEvent(row) : null;
  }

  /**
   * The account's rows since its grant was last known good (the last refresh, connect, reconnect or
   * import), oldest first: what loss detection reads. At most `limit` rows, the newest ones.
   */
  async sinceLastConfirmedGrant(accountId: string, limit = 500): Promise<OAuthEvent[]> {
    const rows = await this.store.db
      .selectFrom('oauth_events')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('seq', '>', (eb) =>
        eb
          .selectFrom('oauth_events')
          .select((inner) => inner.fn.coalesce(inner.fn.max('seq'), inner.val(0)).as('last'))
          .where('account_id', '=', accountId)
          .where('type', 'in', [...GRANT_CONFIRMED_TYPES]),
      )
      .orderBy('seq', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map(toEvent);
  }

  /** The account's newest event of one type (issue 10: the webhook replay guard's grant start). */
  async latestOfType(accountId: string, type: OAuthEventType): Promise<OAuthEvent | null> {
    const row = await this.store.db
      .selectFrom('oauth_events')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('type', '=', type)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toEvent(row) : null;
  }

  async count(filter: { accountId?: string; type?: OAuthEventType } = {}): Promise<number> {
    let query = this.store.db
      .selectFrom('oauth_events')
      .select((eb) => eb.fn.countAll<number | string>().as('n'));
    if (filter.accountId !== undefined) query = query.where('account_id', '=', filter.accountId);
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

function toEvent(row: Selectable<OAuthEventsTable>): OAuthEvent {
  return {
    id: row.id,
    accountId: row.account_id,
    type: row.type as OAuthEventType,
    reason: row.reason,
    providerErrorCode: row.provider_error_code,
    detail: row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : null,
    createdAt: Number(row.created_at),
    seq: Number(row.seq),
  };
}
