import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import { isAccessTokenExpired, type OAuthRefreshResult } from '../domain/token.js';

/** On-demand callers wait this long after a failed refresh, doubling per failure, up to the max. */
const COOL_DOWN_BASE_MS = 5_000;
const COOL_DOWN_MAX_MS = 5 * 60_000;

/** Cool-downs whose backoff ended this long ago no longer double: they are dropped. */
const COOL_DOWN_FORGET_AFTER_MS = COOL_DOWN_MAX_MS;

/**
 * After a failed refresh, callers of ensureValidAccessToken get the failure again (with the still
 * valid old token) instead of a new round of calls, until a backoff that grows with each failure
 * has passed or the platform's Retry-After is over. Without it, a publishing engine asking before
 * every post would hammer a failing platform (peers have made 60,000 failed calls a day for one
 * account). Per process; the background refresher keeps its own schedule in the database.
 */
export class RefreshCoolDowns {
  private readonly coolDowns = new Map<
    string,
    { until: number; result: OAuthRefreshResult; failures: number }
  >();
  private lastSweep = Number.NEGATIVE_INFINITY;

  constructor(private readonly clock: Clock) {}

  /** The failure to hand back instead of refreshing, or null when a refresh may be tried. */
  coolingDown(account: SocialAccount): OAuthRefreshResult | null {
    const coolDown = this.coolDowns.get(account.id);
    const now = this.clock.now();
    if (!coolDown || coolDown.until <= now) return null;
    // An expired token is worth another try, unless the platform asked us to wait.
    if (isAccessTokenExpired(account, this.clock) && coolDown.result.reason !== 'rate_limited') return null;
    return { ...coolDown.result, attempts: 0, retryAt: coolDown.until };
  }

  start(accountId: string, result: OAuthRefreshResult, now: number): void {
    this.prune(now);
    const failures = (this.coolDowns.get(accountId)?.failures ?? 0) + 1;
    const backoff = Math.min(COOL_DOWN_MAX_MS, COOL_DOWN_BASE_MS * 2 ** (failures - 1));
    const until = Math.max(now + backoff, result.retryAt ?? 0);
    // Tells the caller when asking again can lead to a new call to the platform.
    result.retryAt = until;
    this.coolDowns.set(accountId, { until, result, failures });
  }

  /** A refresh succeeded (or tokens were stored): the backoff starts afresh. */
  clear(accountId: string): void {
    this.coolDowns.delete(accountId);
  }

  get size(): number {
    return this.coolDowns.size;
  }

  /**
   * Forgets cool-downs that ended long enough ago that a new failure should start the backoff
   * afresh: without this, every account that ever failed stayed in memory for the life of the
   * process. At most one sweep a minute.
   */
  private prune(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [accountId, coolDown] of this.coolDowns) {
      if (coolDown.until + COOL_DOWN_FORGET_AFTER_MS <= now) this.coolDowns.delete(accountId);
    }
  }
}
