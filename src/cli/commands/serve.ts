import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { startHttpService } from '../../http/server.js';
import { createLogger } from '../../service/logging.js';
import { SocialOAuth } from '../../service/socialOAuth.js';
import { waitForSignal } from './sandbox.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the HTTP service on HOST:PORT (migrates first); stops gracefully on SIGINT/SIGTERM')
    .action(async () => {
      const config = loadConfig();
      const logger = createLogger({ level: config.logLevel });
      const oauth = await SocialOAuth.open({ config, logger });
      try {
        const service = await startHttpService({ oauth, logger });
        logger.info(
          { url: service.url, database: oauth.health.databaseDescription },
          'social-oauth listening',
        );
        // The background refresher (issue 4) runs beside the API unless REFRESHER_ENABLED=false
        // (when dedicated `social-oauth worker` processes do the work).
        const stopRefresher = new AbortController();
        const refresher = config.refresher.enabled ? oauth.createRefresher().run(stopRefresher.signal) : null;
        // Issue 13: the publication worker, unless PUBLISH_WORKER_ENABLED=false.
        const publications = config.publishing.workerEnabled
          ? oauth.createPublicationWorker().run(stopRefresher.signal)
          : null;
        const signal = await waitForSignal();
        logger.info({ signal }, 'shutting down');
        stopRefresher.abort();
        await service.stop();
        await refresher;
        await publications;
      } finally {
        await oauth.close();
      }
    });
}
