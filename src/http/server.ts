import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { SocialOAuth } from '../service/socialOAuth.js';
import { buildApp } from './app.js';

export interface RunningService {
  app: FastifyInstance;
  /** Where it listens, e.g. http://127.0.0.1:8080. */
  url: string;
  /** Graceful stop: no new connections, requests in flight finish (up to the shutdown timeout). */
  stop(): Promise<void>;
}

/**
 * Builds the app and listens on HOST/PORT of the configuration `oauth` was opened with; the caller
 * owns `oauth` and closes it after stop().
 */
export async function startHttpService(options: {
  oauth: SocialOAuth;
  logger?: FastifyBaseLogger;
}): Promise<RunningService> {
  const config = options.oauth.config;
  const app = await buildApp({ app: options.oauth, logger: options.logger });
  const address = await app.listen({ host: config.host, port: config.port });
  let stopping: Promise<void> | null = null;
  return {
    app,
    url: address,
    stop() {
      stopping ??= (async () => {
        const timer = setTimeout(() => {
          // Requests still running after the timeout are cut rather than holding the process.
          app.server.closeAllConnections();
        }, config.http.shutdownTimeoutMs);
        timer.unref();
        try {
          await app.close();
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}
