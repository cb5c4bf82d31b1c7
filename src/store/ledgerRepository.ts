import { randomUUID } from 'node:crypto';
import type { Insertable, Selectable } from 'kysely';
import type { NewOAuthEvent, OAuthEvent, OAuthEventType } from '../domain/ledger.js';
import type { StoreDatabase } from './database.js';
import type { OAuthEventsTable } from './schema.js';

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

/** The append-only OAuth ledger. There is no update or delete here on purpose. */
export class LedgerRepository {
  constructor(private readonly store: StoreDatabase) {}

  async append(event: NewOAuthEvent, now: number): Promise<void> {
    await this.store.db.insertInto('oauth_events').values(ledgerRow(event, now)).execute();
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

  /** The account's most recent event, or null. */
  async latest(accountId: string): Promise<OAuthEvent | null> {
    const row = await this.store.db
      .selectFrom('oauth_events')
      .selectAll()
      .where('account_id', '=', accountId)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toEvent(row) : null;
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
