import type { Command } from 'commander';
import { withApp } from '../context.js';
import { waitForSignal } from './sandbox.js';

/**
 * `social-oauth worker`: the background refresher as its own process. Run as many as you like on
 * one PostgreSQL: they share the due accounts without refreshing one twice. SIGINT/SIGTERM stop it
 * after the refreshes in flight; accounts it had claimed but not started are handed back.
 */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'keep every account alive and work publications: refresh accounts as they come due, until stopped',
    )
    .option('--once', 'run one pass and exit (like refresh --due, without the progress bar)')
    .action((options: { once?: boolean }) =>
      withApp(
        async (app) => {
          const refresher = app.createRefresher();
          // Issue 13: publications are worked beside the refresher, in the same process.
          const publications = app.createPublicationWorker();
          if (options.once) {
            const summary = await refresher.runPass();
            await publications.runUntilIdle();
            console.log(JSON.stringify(summary));
            return;
          }
          const stop = new AbortController();
          void waitForSignal().then(() => stop.abort());
          const { concurrency, intervalMs } = app.config.refresher;
          // Notifications (needs_reauth, revoked, expiring) written by any process are delivered
          // from the outbox here too, when WEBHOOK_URL is set.
          const notifications = app.createNotificationDispatcher();
          const unsubscribe = notifications ? app.tokens.onEvent(notifications.listener) : null;
          notifications?.start();
          process.stderr.write(
            `social-oauth worker: ${app.health.databaseDescription}, ${concurrency} at a time, looking every ${intervalMs / 1000}s` +
              `${notifications ? ', delivering notifications' : ''}\n`,
          );
          try {
            await Promise.all([refresher.run(stop.signal), publications.run(stop.signal)]);
          } finally {
            unsubscribe?.();
            await notifications?.close(app.config.http.shutdownTimeoutMs);
          }
          process.stderr.write('social-oauth worker: stopped\n');
        },
        { migrate: true },
      ),
    );
}
