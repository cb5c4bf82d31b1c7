import { randomUUID } from 'node:crypto';
import { hmacSha256 } from '../crypto/opaqueToken.js';
import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import { backoffDelayMs } from '../domain/retryPolicy.js';

/** Events that mean "ask your user to reconnect": the ones the publishing app must hear about. */
const NOTIFIED_TYPES = new Set(['needs_reauth', 'revoked']);

export interface StatusNotifierOptions {
  url: string;
  secret: string;
  maxAttempts: number;
  clock: Clock;
  logger: Logger;
  fetch?: typeof fetch;
  backoff?: { baseMs: number; maxMs: number };
  timeoutMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Told how each delivery ended (metrics). */
  onOutcome?: (outcome: 'delivered' | 'failed' | 'abandoned') => void;
}

/** The body POSTed to WEBHOOK_URL. Field names are part of the API contract. */
export interface StatusNotification {
  id: string;
  type: 'account.needs_reauth' | 'account.revoked';
  created_at: string;
  account: {
    id: string;
    owner_id: string;
    provider: string;
    external_account_id: string;
    display_name: string | null;
    status: string;
  };
  reason: string | null;
  provider_error_code: string | null;
}

/**
 * POSTs account status changes to WEBHOOK_URL, signed like Stripe's and TikTok's webhooks:
 * `Social-OAuth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, so a receiver can
 * check both who sent it and that it is fresh. 5xx, 408, 429 and network failures are retried with
 * jittered exponential backoff; other 4xx are final (the receiver rejected it, retrying will not help).
 *
 * Deliveries live in memory: a process that stops while one is pending loses it (the ledger still
 * has the event). Receivers must be idempotent: `id` is stable across retries.
 */
export class StatusNotifier {
  private readonly pending = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly fetch: typeof fetch;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly options: StatusNotifierOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.sleep = options.sleep ?? abortableSleep;
  }

  /** An OAuthEventListener: give it to TokenService.onEvent and AccountLifecycle.onEvent. */
  readonly listener = (event: NewOAuthEvent, account: SocialAccount): void => {
    if (!NOTIFIED_TYPES.has(event.type) || this.stopping.signal.aborted) return;
    const notification: StatusNotification = {
      id: randomUUID(),
      type: event.type === 'revoked' ? 'account.revoked' : 'account.needs_reauth',
      created_at: new Date(this.options.clock.now()).toISOString(),
      account: {
        id: account.id,
        owner_id: account.ownerId,
        provider: account.provider,
        external_account_id: account.externalAccountId,
        display_name: account.displayName,
        status: account.status,
      },
      reason: event.reason ?? null,
      provider_error_code: event.providerErrorCode ?? null,
    };
    const delivery = this.deliver(notification).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  };

  /** Signs a body the way receivers verify it. */
  static sign(secret: string, timestampSeconds: number, body: string): string {
    return `t=${timestampSeconds},v1=${hmacSha256(secret, `${timestampSeconds}.${body}`, 'hex')}`;
  }

  /** Waits up to `timeoutMs` for deliveries in flight, then abandons the rest (shutdown). */
  async close(timeoutMs: number): Promise<void> {
    const all = Promise.allSettled([...this.pending]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    this.stopping.abort();
    await all;
  }

  private async deliver(notification: StatusNotification): Promise<void> {
    const { maxAttempts, logger } = this.options;
    const body = JSON.stringify(notification);
    const backoff = this.options.backoff ?? { baseMs: 1000, maxMs: 60_000 };
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const outcome = await this.attempt(body, notification.id);
      if (outcome === 'delivered' || outcome === 'rejected') {
        this.options.onOutcome?.(outcome === 'delivered' ? 'delivered' : 'failed');
        if (outcome === 'rejected')
          logger.warn({ notificationId: notification.id }, 'webhook receiver rejected a notification');
        return;
      }
      if (attempt === maxAttempts || this.stopping.signal.aborted) break;
      // Full jitter, never zero: a receiver that is down should not be hit again at once.
      const delay = Math.max(backoff.baseMs / 2, backoffDelayMs(attempt, backoff, this.options.random));
      try {
        await this.sleep(delay, this.stopping.signal);
      } catch {
        break;
      }
    }
    this.options.onOutcome?.(this.stopping.signal.aborted ? 'abandoned' : 'failed');
    logger.error(
      { notificationId: notification.id, type: notification.type },
      'webhook notification could not be delivered',
    );
  }

  private async attempt(body: string, id: string): Promise<'delivered' | 'rejected' | 'retry'> {
    const timestamp = Math.floor(this.options.clock.now() / 1000);
    try {
      const response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'social-oauth',
          'social-oauth-event-id': id,
          'social-oauth-signature': StatusNotifier.sign(this.options.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
        redirect: 'manual',
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return 'delivered';
      if (response.status >= 500 || response.status === 408 || response.status === 429) return 'retry';
      return 'rejected';
    } catch {
      return 'retry';
    }
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
