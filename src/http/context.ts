import type { AppConfig } from '../config.js';
import type { Clock } from '../domain/clock.js';
import { AccountLifecycle } from '../service/accountLifecycle.js';
import { ApiKeys } from '../service/apiKeys.js';
import { ConnectFlow } from '../service/connectFlow.js';
import { PortalSessions } from '../service/portalSessions.js';
import type { SocialOAuth } from '../service/socialOAuth.js';
import { StatusNotifier } from '../service/statusNotifier.js';
import { ApiKeyRepository } from '../store/apiKeyRepository.js';
import { ConnectSessionRepository } from '../store/connectSessionRepository.js';
import { PortalSessionRepository } from '../store/portalSessionRepository.js';
import { ServiceMetrics } from './metrics.js';

/** What the route plugins work with: built once per app, passed to each plugin as its options. */
export interface HttpContext {
  oauth: SocialOAuth;
  config: AppConfig;
  clock: Clock;
  apiKeys: ApiKeys;
  lifecycle: AccountLifecycle;
  connect: ConnectFlow;
  portal: PortalSessions;
  metrics: ServiceMetrics;
  notifier: StatusNotifier | null;
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
  const lifecycle = new AccountLifecycle({
    accounts: oauth.accounts,
    ledger: oauth.ledger,
    providers: oauth.providers,
    clock,
    logger: oauth.logger,
  });
  const metrics = new ServiceMetrics(() => oauth.accounts.countByStatus());
  const notifier =
    config.http.webhookUrl !== null && config.http.webhookSecret !== null
      ? new StatusNotifier({
          url: config.http.webhookUrl,
          secret: config.http.webhookSecret,
          maxAttempts: config.http.webhookMaxAttempts,
          clock,
          logger: oauth.logger,
          fetch: options.fetch,
          backoff: options.notifierBackoff,
          onOutcome: (outcome) => metrics.notifications.inc({ outcome }),
        })
      : null;
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
  if (notifier) {
    unsubscribe.push(oauth.tokens.onEvent(notifier.listener));
    lifecycle.onEvent(notifier.listener);
  }
  return {
    oauth,
    config,
    clock,
    apiKeys: new ApiKeys(new ApiKeyRepository(oauth.database), clock),
    lifecycle,
    connect: new ConnectFlow({
      sessions: new ConnectSessionRepository(oauth.database),
      cipher: oauth.cipher,
      providers: oauth.providers,
      lifecycle,
      clock,
      logger: oauth.logger,
      publicBaseUrl: config.http.publicBaseUrl,
      allowedReturnOrigins: config.http.allowedReturnOrigins,
      ttlSeconds: config.http.connectSessionTtlSeconds,
    }),
    portal: new PortalSessions(
      new PortalSessionRepository(oauth.database),
      clock,
      config.http.portalSessionTtlSeconds,
      oauth.logger,
    ),
    metrics,
    notifier,
    detach: () => {
      for (const off of unsubscribe) off();
    },
  };
}
