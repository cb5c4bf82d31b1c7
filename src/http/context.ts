import type { AppConfig } from '../config.js';
import type { Clock } from '../domain/clock.js';
import type { AccountLifecycle } from '../service/accountLifecycle.js';
import type { ApiKeys } from '../service/apiKeys.js';
import type { ConnectFlow } from '../service/connectFlow.js';
import type { NotificationDispatcher } from '../service/notificationDispatcher.js';
import type { PortalSessions } from '../service/portalSessions.js';
import type { SocialOAuth } from '../service/socialOAuth.js';
import { ServiceMetrics } from './metrics.js';

/**
 * What the route plugins work with: built once per app, passed to each plugin as its options. The
 * services are the SocialOAuth's own; the context adds metrics and the notification dispatcher.
 */
export interface HttpContext {
  oauth: SocialOAuth;
  config: AppConfig;
  clock: Clock;
  apiKeys: ApiKeys;
  lifecycle: AccountLifecycle;
  connect: ConnectFlow;
  portal: PortalSessions;
  metrics: ServiceMetrics;
  /** Delivers the notification outbox to WEBHOOK_URL while the app runs (null: no receiver). */
  notifications: NotificationDispatcher | null;
  /** Unsubscribes the listeners this context attached to the token service. */
  detach(): void;
}

export interface HttpContextOptions {
  /** Used for outgoing notifications (tests point it anywhere). */
  fetch?: typeof fetch;
  notifierBackoff?: { baseMs: number; maxMs: number };
}

export function createHttpContext(
  oauth: SocialOAuth,
  config: AppConfig,
  options: HttpContextOptions = {},
): HttpContext {
  const clock = oauth.clock;
  const lifecycle = oauth.lifecycle;
  const metrics = new ServiceMetrics(() => oauth.accounts.countByStatus());
  // Notifications are written to the outbox in the commit of their event, whatever happens here;
  // the dispatcher delivers them (and those other processes wrote), and survives nothing it need not.
  const notifications = oauth.createNotificationDispatcher({
    fetch: options.fetch,
    backoff: options.notifierBackoff,
    onOutcome: (outcome) => metrics.notifications.inc({ outcome }),
  });
  const unsubscribe: Array<() => void> = [];
  unsubscribe.push(
    oauth.tokens.onEvent((event, account) => {
      if (event.type === 'refreshed')
        metrics.refreshes.inc({ provider: account.provider, outcome: 'success' });
      if (event.type === 'refresh_failed' || event.type === 'needs_reauth') {
        metrics.refreshes.inc({ provider: account.provider, outcome: event.reason ?? event.type });
      }
    }),
  );
  if (notifications) {
    // An event of this process: deliver now rather than at the next poll.
    unsubscribe.push(oauth.tokens.onEvent(notifications.listener));
    unsubscribe.push(lifecycle.onEvent(notifications.listener));
    notifications.start();
  }
  return {
    oauth,
    config,
    clock,
    apiKeys: oauth.apiKeys,
    lifecycle,
    connect: oauth.connect,
    portal: oauth.portalSessions,
    metrics,
    notifications,
    detach: () => {
      for (const off of unsubscribe) off();
    },
  };
}
