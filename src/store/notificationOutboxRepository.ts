import type { Selectable } from 'kysely';
import type { NotificationType } from '../domain/notification.js';
import type { StoreDatabase } from './database.js';
import { dialectOf } from './dialect.js';
import { inTransaction, writeLedgerEvent } from './ledgerRepository.js';
import type { NotificationOutboxTable } from './schema.js';

/** A notification as the dispatcher delivers it. */
export interface OutboxNotification {
  eventId: string;
  type: NotificationType;
  accountId: string;
  ownerId: string;
  provider: string;
  externalAccountId: string;
  displayName: string | null;
  accountStatus: string;
  reason: string | null;
  providerErrorCode: string | null;
  expiresAt: number | null;
  createdAt: number;
  /** Attempts made before this claim, by any process. */
  attempts: number;
}

export interface OutboxState {
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  claimedBy: string | null;
  deliveredAt: number | null;
  lastError: string | null;
}

/**
 * The notification outbox (`notification_outbox`). Rows are written with their ledger event
 * (`writeLedgerEvent`); this is how processes take them, and record how each attempt went.
 *
 * Every update after a claim is conditioned on `claimed_by = owner`: a process whose claim lapsed
 * (it stalled past `claimMs`, another took the row) cannot overwrite the other's outcome.
 */
export class NotificationOutboxRepository {
  constructor(private readonly store: StoreDatabase) {}

  private get db() {
    return this.store.db;
  }

  /**
   * Takes up to `limit` pending notifications that are due, by moving their `next_attempt_at` past
   * the claim: nobody else sees them as due until it lapses (a process that dies mid-delivery leaves
   * them to others). On PostgreSQL `FOR UPDATE SKIP LOCKED` makes concurrent claimers take disjoint
   * rows without waiting; SQLite has one writer, so the single UPDATE is already exclusive.
   */
  async claimDue(options: { now: number; limit: number; claimMs: number; owner: string }) {
    const { now, limit, claimMs, owner } = options;
    const skipLocked = dialectOf(this.store).supportsSkipLocked;
    const rows = await this.db
      .updateTable('notification_outbox')
      .set({ next_attempt_at: now + claimMs, claimed_by: owner })
      .where('event_id', 'in', (eb) => {
        const due = eb
          .selectFrom('notification_outbox')
          .select('event_id')
          .where('state', '=', 'pending')
          .where('next_attempt_at', '<=', now)
          .orderBy('next_attempt_at')
          .limit(limit);
        return skipLocked ? due.forUpdate().skipLocked() : due;
      })
      .where('state', '=', 'pending')
      .returningAll()
      .execute();
    return rows.map(toNotification).sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The earliest time a pending notification is due (so an idle dispatcher knows when to look). */
  async nextDueAt(): Promise<number | null> {
    const row = await this.db
      .selectFrom('notification_outbox')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return row?.at === null || row?.at === undefined ? null : Number(row.at);
  }

  async markDelivered(eventId: string, owner: string, now: number): Promise<boolean> {
    return this.finish(eventId, owner, {
      state: 'delivered',
      delivered_at: now,
      last_error: null,
    });
  }

  /** A final failure: refused by the receiver, or out of attempts. */
  async markFailed(eventId: string, owner: string, error: string): Promise<boolean> {
    return this.finish(eventId, owner, { state: 'failed', last_error: error });
  }

  /** A failed attempt to be tried again at `at`. */
  async markRetry(eventId: string, owner: string, at: number, error: string): Promise<boolean> {
    return this.finish(eventId, owner, { next_attempt_at: at, last_error: error });
  }

  /** Hands back a claimed notification unattempted (or cut short by a stop): due again at once. */
  async release(eventId: string, owner: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('notification_outbox')
      .set({ claimed_by: null, next_attempt_at: now })
      .where('event_id', '=', eventId)
      .where('claimed_by', '=', owner)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  private async finish(
    eventId: string,
    owner: string,
    values: Partial<
      Pick<Selectable<NotificationOutboxTable>, 'state' | 'delivered_at' | 'last_error' | 'next_attempt_at'>
    >,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('notification_outbox')
      .set((eb) => ({ ...values, claimed_by: null, attempts: eb('attempts', '+', 1) }))
      .where('event_id', '=', eventId)
      .where('claimed_by', '=', owner)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Writes an `account.expiring` notification (and its `expiring` ledger event, in one commit) for
   * each active account whose grant dies within `noticeMs`, once per account and expiry: a second
   * look, by this process or another, finds the row and writes nothing. Returns how many were new.
   *
   * The look reads the accounts with a known grant end (`oauth_refresh_expires_at`) without an index
   * on it: every TikTok refresh moves that column, and an index on it would cost each refresh more
   * than this look, made once a minute, costs.
   */
  async recordExpiring(options: { now: number; noticeMs: number; limit: number }): Promise<number> {
    const { now, noticeMs, limit } = options;
    const candidates = await this.db
      .selectFrom('social_accounts as a')
      .select(['a.id', 'a.oauth_refresh_expires_at'])
      .where('a.status', '=', 'active')
      .where('a.oauth_refresh_expires_at', 'is not', null)
      .where('a.oauth_refresh_expires_at', '>', now)
      .where('a.oauth_refresh_expires_at', '<=', now + noticeMs)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('notification_outbox as o')
              .select('o.event_id')
              .whereRef('o.account_id', '=', 'a.id')
              .whereRef('o.expires_at', '=', 'a.oauth_refresh_expires_at'),
          ),
        ),
      )
      .orderBy('a.oauth_refresh_expires_at')
      .limit(limit)
      .execute();
    let written = 0;
    for (const candidate of candidates) {
      const expiresAt = Number(candidate.oauth_refresh_expires_at);
      const id = await inTransaction(this.db, (trx) =>
        writeLedgerEvent(
          trx,
          {
            accountId: candidate.id,
            type: 'expiring',
            reason: 'refresh_token_expires',
            detail: { expiresAt: new Date(expiresAt).toISOString() },
          },
          now,
          { expiresAt },
        ),
      );
      if (id !== null) written++;
    }
    return written;
  }

  /**
   * Deletes up to `limit` notifications delivered before `deliveredBefore`; returns how many. An
   * `account.expiring` row is kept until its grant end is itself older than `deliveredBefore`: it is
   * what makes that warning once per grant end (`recordExpiring` looks for it), and without it the
   * next look would warn again. Measured against the retention, not this process's now, so that a
   * process whose clock runs ahead cannot delete a row another process still relies on. Pending
   * rows are never touched, nor failed ones (the evidence of a notification that never arrived).
   */
  async pruneDelivered(options: { deliveredBefore: number; limit: number }): Promise<number> {
    const { deliveredBefore, limit } = options;
    const result = await this.db
      .deleteFrom('notification_outbox')
      .where('event_id', 'in', (eb) =>
        eb
          .selectFrom('notification_outbox')
          .select('event_id')
          .where('state', '=', 'delivered')
          .where('delivered_at', '<', deliveredBefore)
          .where((inner) => inner.or([inner('expires_at', 'is', null), inner('expires_at', '<=', deliveredBefore)]))
          .limit(limit),
      )
      .where('state', '=', 'delivered')
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** One notification's delivery state (tests, support). */
  async stateOf(eventId: string): Promise<OutboxState | null> {
    const row = await this.db
      .selectFrom('notification_outbox')
      .selectAll()
      .where('event_id', '=', eventId)
      .executeTakeFirst();
    if (!row) return null;
    return {
      state: row.state as OutboxState['state'],
      attempts: row.attempts,
      nextAttemptAt: Number(row.next_attempt_at),
      claimedBy: row.claimed_by,
      deliveredAt: row.delivered_at === null ? null : Number(row.delivered_at),
      lastError: row.last_error,
    };
  }

  /** How many notifications are in each state (metrics, tests). */
  async countByState(): Promise<Record<OutboxState['state'], number>> {
    const rows = await this.db
      .selectFrom('notification_outbox')
      .select(['state', (eb) => eb.fn.countAll<number | string>().as('n')])
      .groupBy('state')
      .execute();
    const counts = { pending: 0, delivered: 0, failed: 0 };
    for (const row of rows) counts[row.state as OutboxState['state']] = Number(row.n);
    return counts;
  }
}

function toNotification(row: Selectable<NotificationOutboxTable>): OutboxNotification {
  return {
    eventId: row.event_id,
    type: row.type as NotificationType,
    accountId: row.account_id,
    ownerId: row.owner_id,
    provider: row.provider,
    externalAccountId: row.external_account_id,
    displayName: row.display_name,
    accountStatus: row.account_status,
    reason: row.reason,
    providerErrorCode: row.provider_error_code,
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    createdAt: Number(row.created_at),
    attempts: row.attempts,
  };
}
