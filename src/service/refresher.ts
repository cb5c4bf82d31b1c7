import type { RefresherSettings } from '../config.js';
import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import { AccountNotFound } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import { earliestRefreshAt, keepAliveRetryAt } from '../domain/refreshPolicy.js';
import type { OAuthRefreshResult } from '../domain/token.js';
import { capabilitiesOf } from '../platforms/capabilities.js';
import { PROVIDER_NAMES } from '../platforms/registry.js';
import {
  type AccountRepository,
  type ClaimedAccount,
  scheduleInputOfAccount,
} from '../store/accountRepository.js';
import { deadlineOf, keepAliveStateOf } from './refreshSchedule.js';
import type { TokenService } from './tokenService.js';

/** What became of one account the refresher took. */
export type KeepAliveOutcome =
  /** The platform issued new tokens. */
  | 'refreshed'
  /** Nothing to do: someone refreshed or reconnected it after it was claimed. */
  | 'skipped'
  /** The refresh could not happen yet (token too young, another refresher at it): moved later. */
  | 'postponed'
  /** Failed with the grant intact: retried later with backoff. */
  | 'failed'
  /** Dead: its user must connect it again; never retried. */
  | 'needs_reauth';

export interface PassSummary {
  /** Accounts that had no schedule (written before it existed) and got one. */
  scheduled: number;
  claimed: number;
  outcomes: Record<KeepAliveOutcome, number>;
  byProvider: Record<ProviderName, Record<KeepAliveOutcome, number>>;
  durationMs: number;
}

export interface RefresherDeps {
  accounts: AccountRepository;
  tokens: TokenService;
  clock: Clock;
  logger: Logger;
  settings: RefresherSettings;
  /** The lease of the token service: how long to postpone an account another process is refreshing. */
  leaseSeconds: number;
  random?: () => number;
  /** Real-time wait between idle passes (tests and the year simulation drive passes themselves). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface PassOptions {
  /** Told after each account, for a progress bar. */
  onAccount?: (outcome: KeepAliveOutcome, claim: ClaimedAccount) => void;
  /**
   * Accounts due by this time (default: now at the start of the pass), in this process's clock;
   * on PostgreSQL it counts as that far from now on the database's clock.
   */
  dueBy?: number;
  /** Stops taking new accounts when aborted; accounts in flight finish. */
  signal?: AbortSignal;
  /** Refresh every active account, due or not (`refresh --all`), instead of the due ones. */
  everyActive?: boolean;
}

const emptyOutcomes = (): Record<KeepAliveOutcome, number> => ({
  refreshed: 0,
  skipped: 0,
  postponed: 0,
  failed: 0,
  needs_reauth: 0,
});

/**
 * The background refresher: keeps every active account alive by refreshing it when the refresh
 * policy says so (its `next_refresh_at`), with bounded concurrency. Many refreshers (processes,
 * machines) can run on one database:
 *
 * - accounts are claimed in batches by moving their `next_refresh_at` past the claim
 *   (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two workers never take the same account at once,
 *   and a worker that dies leaves its claims to lapse after `claimSeconds`;
 * - on PostgreSQL, "due", the claim's end and every retry time are measured by the database's
 *   clock (this process gives only waits from its own now), so a worker whose clock runs ahead
 *   neither takes accounts early nor one behind starves them;
 * - each refresh goes through the token service with the version seen at claim time, under the
 *   account's refresh lease: a claim that lapsed and was taken again, or an on-demand refresh in
 *   between, cannot make a second call to the platform.
 *
 * Platform rate limits and calls in flight are bounded by the token service's outbound gate.
 */
export class Refresher {
  private readonly random: () => number;

  constructor(private readonly deps: RefresherDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** How many active accounts are due now. */
  countDue(): Promise<number> {
    return this.deps.accounts.scheduling.countDueForRefresh(this.deps.clock.now());
  }

  /**
   * One pass: schedule what has no schedule, then refresh every account due by the pass's start
   * (or every active account, with `everyActive`).
   */
  async runPass(options: PassOptions = {}): Promise<PassSummary> {
    const { accounts, clock, settings } = this.deps;
    const started = performance.now();
    const summary: PassSummary = {
      scheduled: 0,
      claimed: 0,
      outcomes: emptyOutcomes(),
      byProvider: Object.fromEntries(
        PROVIDER_NAMES.map((p) => [p, emptyOutcomes()]),
      ) as PassSummary['byProvider'],
      durationMs: 0,
    };
    for (;;) {
      const scheduled = await accounts.scheduling.scheduleUnscheduled(clock.now(), settings.batchSize);
      summary.scheduled += scheduled;
      if (scheduled < settings.batchSize) break;
    }
    const dueBy = options.dueBy ?? clock.now();
    const claimDue = () =>
      accounts.scheduling.claimDueForRefresh({
        dueBy,
        now: clock.now(),
        limit: settings.batchSize,
        claimMs: settings.claimSeconds * 1000,
      });
    await this.drain(options.everyActive ? this.everyActive() : claimDue, summary, options);
    summary.durationMs = performance.now() - started;
    return summary;
  }

  /** Keyset pages of every active account, at their current version (`refresh --all`). */
  private everyActive(): () => Promise<ClaimedAccount[]> {
    let after: string | null = null;
    return async () => {
      const page = await this.deps.accounts.scheduling.activeAfter(after, this.deps.settings.batchSize);
      after = page.at(-1)?.id ?? after;
      return page;
    };
  }

  /**
   * Runs `concurrency` lanes over batches from `source` until it returns an empty batch. The pass
   * ends only when every lane has: a lane never throws (an account whose bookkeeping the database
   * refused is logged and counted `failed`; its claim lapses by itself), and a failed claim stops
   * every lane from taking more, then is rethrown once all of them have finished. Whatever was
   * claimed but not started is handed back, so the next pass never starts beside this one.
   */
  private async drain(
    source: () => Promise<ClaimedAccount[]>,
    summary: PassSummary,
    options: PassOptions,
  ): Promise<void> {
    const { accounts, clock, settings, logger } = this.deps;
    const queue: ClaimedAccount[] = [];
    let exhausted = false;
    let sourceFailure: { error: unknown } | null = null;
    let claiming: Promise<void> | null = null;
    const stopped = () => options.signal?.aborted === true || sourceFailure !== null;

    const next = async (): Promise<ClaimedAccount | null> => {
      for (;;) {
        if (stopped()) return null;
        const item = queue.shift();
        if (item) return item;
        if (exhausted) return null;
        claiming ??= source()
          .then(
            (batch) => {
              summary.claimed += batch.length;
              if (batch.length === 0) exhausted = true;
              queue.push(...batch);
            },
            (error: unknown) => {
              sourceFailure ??= { error };
            },
          )
          .finally(() => {
            claiming = null;
          });
        await claiming;
      }
    };

    const lane = async () => {
      for (let claim = await next(); claim !== null; claim = await next()) {
        let outcome: KeepAliveOutcome;
        try {
          outcome = await this.refreshClaimed(claim);
        } catch (error) {
          logger.error({ accountId: claim.id, err: describe(error) }, 'keep-alive refresh failed');
          outcome = 'failed';
        }
        summary.outcomes[outcome]++;
        summary.byProvider[claim.provider] ??= emptyOutcomes();
        const byProvider = summary.byProvider[claim.provider]!;
        byProvider[outcome]++;
        try {
          options.onAccount?.(outcome, claim);
        } catch (error) {
          logger.error({ err: describe(error) }, 'refresher progress callback failed');
        }
      }
    };
    await Promise.all(Array.from({ length: settings.concurrency }, lane));
    // Stopped early: hand back what was claimed but not started, instead of letting claims lapse.
    if (!options.everyActive) {
      for (const claim of queue.splice(0)) {
        const now = clock.now();
        await accounts.scheduling
          .scheduleRefreshAt(claim.id, claim.version, { at: now, now })
          .catch((error: unknown) => {
            logger.warn(
              { accountId: claim.id, err: describe(error) },
              'could not hand back a claimed account; its claim lapses by itself',
            );
          });
      }
    }
    if (sourceFailure !== null) throw (sourceFailure as { error: unknown }).error;
  }

  /**
   * Runs passes until `signal` aborts: a pass whenever accounts are due, else a look every
   * `intervalMs`. Errors of a pass (the database went away) are logged and the loop goes on.
   */
  async run(signal: AbortSignal): Promise<void> {
    const sleep = this.deps.sleep ?? abortableSleep;
    while (!signal.aborted) {
      let claimed = 0;
      try {
        const summary = await this.runPass({ signal });
        claimed = summary.claimed;
        if (summary.claimed > 0 || summary.scheduled > 0) {
          this.deps.logger.info({ ...summary.outcomes, scheduled: summary.scheduled }, 'refresher pass');
        }
      } catch (error) {
        this.deps.logger.error({ err: describe(error) }, 'refresher pass failed');
      }
      if (claimed === 0 && !signal.aborted) await sleep(this.deps.settings.intervalMs, signal);
    }
  }

  /** Refreshes one claimed account and plans what follows from the outcome. */
  async refreshClaimed(claim: ClaimedAccount): Promise<KeepAliveOutcome> {
    const { accounts, tokens, clock, logger } = this.deps;
    let account: SocialAccount;
    let result: OAuthRefreshResult | null;
    try {
      ({ account, result } = await tokens.refreshOAuthToken(claim.id, { expectedVersion: claim.version }));
    } catch (error) {
      if (error instanceof AccountNotFound) return 'skipped';
      logger.error({ accountId: claim.id, err: describe(error) }, 'keep-alive refresh failed');
      await this.recordPlan(claim, () => this.retryLater(claim, claim.version, null, null));
      return 'failed';
    }
    if (result === null) return 'skipped';
    // attempts 0: another process refreshed it while we waited for the lease.
    if (result.success) return result.attempts > 0 ? 'refreshed' : 'skipped';
    switch (result.reason) {
      case 'needs_reauth':
      case 'no_refresh_token':
      case 'account_not_active':
        return 'needs_reauth';
      case 'refresh_in_progress': {
        // Someone else holds the lease; their refresh will reschedule it. If they die, we try again.
        const now = clock.now();
        await this.recordPlan(claim, () =>
          accounts.scheduling.scheduleRefreshAt(claim.id, account.version, {
            at: now + this.deps.leaseSeconds * 1000,
            now,
          }),
        );
        return 'postponed';
      }
      case 'token_too_young': {
        const capabilities = capabilitiesOf(account.provider);
        const earliest = earliestRefreshAt(
          keepAliveStateOf(scheduleInputOfAccount(account), capabilities),
          capabilities,
        );
        // `earliest` comes from the token's issue time, in this clock: passed as a wait from now.
        const now = clock.now();
        await this.recordPlan(claim, () =>
          accounts.scheduling.scheduleRefreshAt(claim.id, account.version, {
            at: Math.max(earliest ?? 0, now + 60_000),
            now,
          }),
        );
        return 'postponed';
      }
      default:
        await this.recordPlan(claim, () => this.retryLater(claim, account.version, account, result.retryAt));
        return 'failed';
    }
  }

  /**
   * Writes when to try an account next. A database that refuses the write costs only the plan: the
   * account keeps its claim, which lapses after `claimSeconds`, and the lane goes on.
   */
  private async recordPlan(claim: ClaimedAccount, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.deps.logger.error(
        { accountId: claim.id, err: describe(error) },
        'could not schedule the next keep-alive refresh; the claim lapses by itself',
      );
    }
  }

  private async retryLater(
    claim: ClaimedAccount,
    version: number,
    account: SocialAccount | null,
    retryAt: number | null,
  ): Promise<void> {
    // Planned in this clock (the token's deadline and a Retry-After were read by it), written as a
    // wait from now: on PostgreSQL the database's clock measures it (see ScheduleTime).
    const now = this.deps.clock.now();
    const at = keepAliveRetryAt(
      {
        now,
        failures: claim.refreshFailures + 1,
        retryAt,
        earliest: null,
        deadline: account ? deadlineOf(scheduleInputOfAccount(account)) : null,
        random: this.random,
      },
      this.deps.settings.keepAlive,
    );
    await this.deps.accounts.scheduling.scheduleRetry(claim.id, version, { at, now });
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
