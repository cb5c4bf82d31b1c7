import { randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import { NOTIFIED_EVENT_TYPES } from '../domain/notification.js';
import { backoffDelayMs } from '../domain/retryPolicy.js';
import type {
  NotificationOutboxRepository,
  OutboxNotification,
} from '../store/notificationOutboxRepository.js';
import { describe } from './refreshOutcomes.js';
import type { StatusNotifier } from './statusNotifier.js';

/** Pruning statements per round at most (see `pruneDelivered`). */
const PRUNE_BATCHES_PER_ROUND = 10;

/** How a delivery round ended for one notification (metrics). */
export type DispatchOutcome = 'delivered' | 'retried' | 'failed' | 'handed_back';

export interface NotificationDispatcherOptions {
  outbox: NotificationOutboxRepository;
  notifier: StatusNotifier;
  clock: Clock;
  logger: Logger;
  /** Attempts per notification, across every process and restart. */
  maxAttempts: number;
  /** Between attempts: jittered exponential backoff, never under half the base. */
  backoff: { baseMs: number; maxMs: number };
  /** How often an idle dispatcher looks for notifications written by other processes. */
  pollMs: number;
  /** How long a claimed notification stays hidden from other processes (one attempt must fit). */
  claimMs: number;
  /** Notifications claimed (and sent at the same time) per round. */
  batchSize?: number;
  /** Warn this long before a grant's known end (`account.expiring`); 0 = never. */
  expiringNoticeMs: number;
  /** How often to look for grants about to end. */
  expiringLookMs?: number;
  /** Delivered notifications are deleted this long after delivery; unset = kept forever. */
  deliveredRetentionMs?: number;
  /** Rows deleted per statement when pruning (several statements per round while there are more). */
  pruneBatchSize?: number;
  /** How often to prune delivered notifications. */
  pruneLookMs?: number;
  random?: () => number;
  onOutcome?: (outcome: DispatchOutcome) => void;
}

/**
 * Delivers the notification outbox: claims due notifications, sends each once, and records the
 * outcome in the database, so that a notification outlives the process that wrote it. Any number
 * of processes can run one on the same database (`serve`, `worker`, `start`): claims keep them
 * from sending one notification at the same time, and a process that dies mid-delivery leaves its
 * claims to lapse. Delivery is at least once (a process can die after the receiver answered and
 * before the row says so); receivers de-duplicate by the event id.
 *
 * Also looks, once a minute, for grants that die at a known time within `expiringNoticeMs` and
 * writes their `account.expiring` notification, once per grant end; and deletes notifications
 * delivered longer than `deliveredRetentionMs` ago, in batches, so the outbox does not grow forever.
 */
export class NotificationDispatcher {
  /** Identifies this process's claims. */
  readonly owner = randomUUID();
  private readonly random: () => number;
  private readonly batchSize: number;
  private readonly expiringLookMs: number;
  /** No new claims once set; the round in flight finishes. */
  private closing = false;
  /** Cuts attempts still on the wire once the grace period of close() is over. */
  private readonly cut = new AbortController();
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private loop: Promise<void> | null = null;
  private lastExpiringLook = Number.NEGATIVE_INFINITY;
  private readonly pruneBatchSize: number;
  private readonly pruneLookMs: number;
  private lastPrune = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: NotificationDispatcherOptions) {
    this.random = options.random ?? Math.random;
    this.batchSize = options.batchSize ?? 16;
    this.expiringLookMs = options.expiringLookMs ?? 60_000;
    this.pruneBatchSize = options.pruneBatchSize ?? 500;
    this.pruneLookMs = options.pruneLookMs ?? 60_000;
  }

  /** Starts delivering in the background until close(). */
  start(): void {
    this.loop ??= this.run();
  }

  /** A notification was just written in this process: look now instead of at the next poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** For TokenService.onEvent and AccountLifecycle.onEvent: wakes on events that notify. */
  readonly listener = (event: Pick<NewOAuthEvent, 'type'>): void => {
    if (NOTIFIED_EVENT_TYPES[event.type] !== undefined) this.wake();
  };

  /**
   * Stops taking notifications, lets the attempts on the wire finish for up to `graceMs`, then cuts
   * them: a cut attempt is handed back (due again at once) for the next process, never dropped.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.wakeUp?.();
    if (this.loop === null) return;
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([this.loop, graceOver]);
    clearTimeout(timer);
    this.cut.abort();
    await this.loop;
  }

  /**
   * One round: the look for expiring grants when it is due, then one claimed batch, sent at once.
   * Returns how many notifications were claimed.
   */
  async runOnce(): Promise<number> {
    const { outbox, clock, expiringNoticeMs } = this.options;
    const now = clock.now();
    if (expiringNoticeMs > 0 && now - this.lastExpiringLook >= this.expiringLookMs) {
      this.lastExpiringLook = now;
      // Its own failure must not hold back the deliveries: logged, and tried again at the next look.
      try {
        const written = await outbox.recordExpiring({ now, noticeMs: expiringNoticeMs, limit: 500 });
        if (written > 0)
          this.options.logger.info({ written }, 'grants about to expire: notifications written');
      } catch (error) {
        this.options.logger.error({ err: describe(error) }, 'could not look for grants about to expire');
      }
    }
    await this.pruneDelivered(now);
    if (this.closing) return 0;
    const batch = await outbox.claimDue({
      now,
      limit: this.batchSize,
      claimMs: this.options.claimMs,
      owner: this.owner,
    });
    await Promise.all(batch.map((notification) => this.deliver(notification)));
    return batch.length;
  }

  /**
   * Deletes what was delivered more than the retention ago, a batch per statement, at most
   * PRUNE_BATCHES_PER_ROUND of them (a backlog is worked off over the next rounds, without holding
   * up deliveries). Its failure is logged and tried again at the next look; it never stops a round.
   * `delivered_at` was written by a process's clock, and a retention of days dwarfs any skew.
   */
  private async pruneDelivered(now: number): Promise<void> {
    const retentionMs = this.options.deliveredRetentionMs;
    if (retentionMs === undefined || this.closing || now - this.lastPrune < this.pruneLookMs) return;
    this.lastPrune = now;
    let pruned = 0;
    try {
      for (let round = 0; round < PRUNE_BATCHES_PER_ROUND; round++) {
        const deleted = await this.options.outbox.pruneDelivered({
          deliveredBefore: now - retentionMs,
          limit: this.pruneBatchSize,
        });
        pruned += deleted;
        if (deleted < this.pruneBatchSize) return;
      }
      // More left: prune again at the next round instead of after a whole look.
      this.lastPrune = Number.NEGATIVE_INFINITY;
    } catch (error) {
      this.options.logger.error({ err: describe(error) }, 'could not prune delivered notifications');
    } finally {
      if (pruned > 0) this.options.logger.info({ pruned }, 'delivered notifications pruned');
    }
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      let waitMs = this.options.pollMs;
      try {
        this.woken = false;
        const claimed = await this.runOnce();
        if (claimed > 0) continue;
        const next = await this.options.outbox.nextDueAt();
        if (next !== null) waitMs = Math.max(0, Math.min(waitMs, next - this.options.clock.now()));
      } catch (error) {
        this.options.logger.error({ err: describe(error) }, 'notification dispatcher round failed');
      }
      if (!this.woken && !this.closing) await this.idle(waitMs);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }

  /** One attempt, and its outcome written down. Never throws: a failed write leaves the claim to lapse. */
  private async deliver(notification: OutboxNotification): Promise<void> {
    const { outbox, notifier, clock, logger, maxAttempts } = this.options;
    const context = { notificationId: notification.eventId, type: notification.type };
    const { outcome, detail } = await notifier.send(notification, this.cut.signal);
    const attempt = notification.attempts + 1;
    const now = clock.now();
    try {
      switch (outcome) {
        case 'delivered':
          await outbox.markDelivered(notification.eventId, this.owner, now);
          this.tell('delivered');
          return;
        case 'rejected':
          await outbox.markFailed(notification.eventId, this.owner, detail ?? 'rejected');
          logger.warn({ ...context, attempt, error: detail }, 'webhook receiver rejected a notification');
          this.tell('failed');
          return;
        case 'stopped':
          await outbox.release(notification.eventId, this.owner, now);
          logger.info(context, 'notification handed back: this process is stopping');
          this.tell('handed_back');
          return;
        case 'retry': {
          if (attempt >= maxAttempts) {
            await outbox.markFailed(notification.eventId, this.owner, detail ?? 'retry');
            logger.error(
              { ...context, attempts: attempt, error: detail },
              'webhook notification could not be delivered',
            );
            this.tell('failed');
            return;
          }
          const { backoff } = this.options;
          // Full jitter, never under half the base: a receiver that is down is not hit again at once.
          const delay = Math.max(backoff.baseMs / 2, backoffDelayMs(attempt, backoff, this.random));
          await outbox.markRetry(notification.eventId, this.owner, now + delay, detail ?? 'retry');
          logger.warn(
            { ...context, attempt, error: detail, retryInMs: delay },
            'webhook notification failed; will retry',
          );
          this.tell('retried');
          return;
        }
      }
    } catch (error) {
      logger.error(
        { ...context, outcome, err: describe(error) },
        'could not record a notification attempt; its claim lapses and it is tried again',
      );
    }
  }

  private tell(outcome: DispatchOutcome): void {
    try {
      this.options.onOutcome?.(outcome);
    } catch (error) {
      this.options.logger.error({ err: describe(error) }, 'notification outcome listener failed');
    }
  }
}
