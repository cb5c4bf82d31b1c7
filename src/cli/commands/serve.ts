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
        const service = await startHttpService({ oauth, config, logger });
        logger.info({ url: service.url, database: oauth.database.description }, 'social-oauth listening');
        const signal = await waitForSignal();
        logger.info({ signal }, 'shutting down');
        await service.stop();
      } finally {
        await oauth.close();
      }
    });
}
