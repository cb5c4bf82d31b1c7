import { hmacSha256 } from '../crypto/opaqueToken.js';
import type { Clock } from '../domain/clock.js';
import type { DeliveryOutcome, StatusNotification } from '../domain/notification.js';
import type { OutboxNotification } from '../store/notificationOutboxRepository.js';

export type { StatusNotification } from '../domain/notification.js';

export interface StatusNotifierOptions {
  url: string;
  secret: string;
  clock: Clock;
  fetch?: typeof fetch;
  /** One attempt, connection to answer (default 10 s). */
  timeoutMs?: number;
}

export interface AttemptResult {
  outcome: DeliveryOutcome;
  /** What went wrong, for the outbox row and the log: a status code or an error's name. Never a body. */
  detail: string | null;
}

/**
 * Sends one notification to WEBHOOK_URL, once: the outbox dispatcher decides about retries.
 *
 * Signed like Stripe's and TikTok's webhooks: `Social-OAuth-Signature: t=<unix seconds>,v1=<hex
 * HMAC-SHA256 of "t.body">`, so a receiver can check both who sent it and that it is fresh.
 * `Social-OAuth-Event-Id` (and the body's `id`) is the ledger event's id, the same on every retry
 * from every process: delivery is at least once, and receivers de-duplicate by it.
 */
export class StatusNotifier {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: StatusNotifierOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** Signs a body the way receivers verify it. */
  static sign(secret: string, timestampSeconds: number, body: string): string {
    return `t=${timestampSeconds},v1=${hmacSha256(secret, `${timestampSeconds}.${body}`, 'hex')}`;
  }

  /** The body receivers get: built from the outbox row, so every retry sends the same bytes but `t`. */
  static bodyOf(notification: OutboxNotification): StatusNotification {
    return {
      id: notification.eventId,
      type: notification.type,
      created_at: new Date(notification.createdAt).toISOString(),
      account: {
        id: notification.accountId,
        owner_id: notification.ownerId,
        provider: notification.provider,
        external_account_id: notification.externalAccountId,
        display_name: notification.displayName,
        status: notification.accountStatus,
      },
      reason: notification.reason,
      provider_error_code: notification.providerErrorCode,
      expires_at: notification.expiresAt === null ? null : new Date(notification.expiresAt).toISOString(),
    };
  }

  /**
   * One attempt. 2xx: delivered; 5xx, 408, 429, a network error or a timeout: retry; any other
   * status: rejected (the receiver refused it; retrying will not help). `stop` cuts the attempt
   * short when the process is stopping: `stopped`, so the notification is handed back, not lost.
   */
  async send(notification: OutboxNotification, stop: AbortSignal): Promise<AttemptResult> {
    if (stop.aborted) return { outcome: 'stopped', detail: null };
    const body = JSON.stringify(StatusNotifier.bodyOf(notification));
    const timestamp = Math.floor(this.options.clock.now() / 1000);
    try {
      const response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'social-oauth',
          'social-oauth-event-id': notification.eventId,
          'social-oauth-signature': StatusNotifier.sign(this.options.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.any([stop, AbortSignal.timeout(this.options.timeoutMs ?? 10_000)]),
        redirect: 'manual',
      });
      // The receiver's body is never read into a log or a row; reading it frees the connection. A
      // failure to read it changes nothing about what the status said.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return { outcome: 'delivered', detail: null };
      const detail = `HTTP ${response.status}`;
      if (response.status >= 500 || response.status === 408 || response.status === 429)
        return { outcome: 'retry', detail };
      return { outcome: 'rejected', detail };
    } catch (error) {
      if (stop.aborted) return { outcome: 'stopped', detail: null };
      return { outcome: 'retry', detail: describeFetchError(error) };
    }
  }
}

/**
 * A network error by name and code (`TypeError: fetch failed (ECONNREFUSED)`, `TimeoutError`),
 * never its message's URL: WEBHOOK_URL may carry a credential in its query.
 */
function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return 'network error';
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === 'string' ? ` (${cause.code})` : '';
  return `${error.name}${code}`;
}
