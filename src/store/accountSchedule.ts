import type { SocialAccount } from '../domain/account.js';
import type { ProviderName } from '../domain/providerName.js';
import {
  type ClaimedAccount,
  type RefreshSchedule,
  type ScheduleInput,
  type ScheduleTime,
  scheduleInputOfAccount,
  scheduleInputOfRow,
} from './accountTypes.js';
import type { StoreDatabase } from './database.js';
import type { StoreDialect } from './dialect.js';

/**
 * The background refresh schedule of `social_accounts`: `next_refresh_at` and `refresh_failures`,
 * claimed by refreshers, moved after a failure, written from an account's token times. No token is
 * read or written here.
 */
export class AccountScheduleStore {
  constructor(
    private readonly store: StoreDatabase,
    private readonly dialect: StoreDialect,
    private readonly schedule: RefreshSchedule | null,
  ) {}

  private get db() {
    return this.store.db;
  }

  /**
   * Claims up to `limit` active accounts due by `dueBy`, earliest first, by moving their
   * `next_refresh_at` to `now + claimMs`: other workers no longer see them as due, and if this one
   * dies they come due again when the claim runs out. On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets
   * concurrent claimers take disjoint rows without waiting on each other; SQLite has one writer, so
   * the single UPDATE is already exclusive. Both times are measured by the dialect's schedule clock
   * (the database's on PostgreSQL: `dueBy` and the claim's end count from its `now()`, so a worker
   * whose clock runs ahead neither takes accounts early nor holds them short).
   */
  async claimDueForRefresh(options: {
    /** Accounts due at or before this time (in the caller's clock, like `now`). */
    dueBy: number;
    now: number;
    limit: number;
    claimMs: number;
  }): Promise<ClaimedAccount[]> {
    const { dueBy, now, limit, claimMs } = options;
    const skipLocked = this.dialect.supportsSkipLocked;
    const dueTime = this.dialect.scheduleTime(this.store, { at: dueBy, now });
    const claimedUntil = this.dialect.scheduleTime(this.store, { at: now + claimMs, now });
    const rows = await this.db
      .updateTable('social_accounts')
      .set({ next_refresh_at: claimedUntil })
      .where('id', 'in', (eb) => {
        const due = eb
          .selectFrom('social_accounts')
          .select('id')
          .where('status', '=', 'active')
          .where('next_refresh_at', '<=', dueTime)
          .orderBy('next_refresh_at')
          .limit(limit);
        return skipLocked ? due.forUpdate().skipLocked() : due;
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

  /** How many active accounts are due at `now` (through the schedule index), by the schedule clock. */
  async countDueForRefresh(now: number): Promise<number> {
    const row = await this.db
      .selectFrom('social_accounts')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('status', '=', 'active')
      .where('next_refresh_at', '<=', this.dialect.scheduleTime(this.store, { at: now, now }))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Plans the next try after a failed keep-alive refresh and counts the failure, unless the account
   * changed since it was claimed (someone refreshed it: their schedule stands) or is no longer active.
   * `at` is a wait from the caller's now, measured by the schedule clock (see `ScheduleTime`).
   */
  async scheduleRetry(id: string, expectedVersion: number, at: ScheduleTime): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set((eb) => ({
        next_refresh_at: this.dialect.scheduleTime(this.store, at),
        refresh_failures: eb('refresh_failures', '+', 1),
      }))
      .where('id', '=', id)
      .where('version', '=', expectedVersion)
      .where('status', '=', 'active')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Moves the next refresh without counting a failure (a refresh that was not possible yet), to
   * `at` measured by the schedule clock (see `ScheduleTime`).
   */
  async scheduleRefreshAt(id: string, expectedVersion: number, at: ScheduleTime): Promise<boolean> {
    const result = await this.db
      .updateTable('social_accounts')
      .set({ next_refresh_at: this.dialect.scheduleTime(this.store, at) })
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
      // From the tokens' own times (see `scheduleFor`); with none to go by, due now by the schedule clock.
      const at =
        this.scheduleFor(scheduleInputOfRow(row), now) ??
        this.dialect.scheduleTime(this.store, { at: now, now });
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

  /**
   * The keep-alive time that follows from an account's tokens, written with them. Absolute and in
   * this process's clock on purpose, also on PostgreSQL: it derives from `expires_at` and the other
   * token times, which this clock computed when it read the platform's `expires_in`; measuring it
   * from the database's clock would shift it by the skew against the very times it is planned from.
   * The due comparison (`claimDueForRefresh`) is the database's.
   */
  scheduleFor(input: ScheduleInput, now: number): number | null {
    return this.schedule === null ? null : this.schedule(input, now);
  }

  /** Writes the schedule that follows from the account's new tokens (this process's clock: see `scheduleFor`). */
  async rescheduled(account: SocialAccount, now: number): Promise<SocialAccount> {
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
}
