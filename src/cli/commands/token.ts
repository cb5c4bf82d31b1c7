import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { OAuthRefreshResult } from '../../domain/token.js';
import { usableAccessToken } from '../../service/usableToken.js';
import { CliError, EXIT, withApp } from '../context.js';

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('print a valid access token for an account, refreshing it first when needed')
    .argument('<accountId>')
    .option('--json', 'print {access_token, expires_at, refreshed} as JSON')
    .action((accountId: string, options: { json?: boolean }) =>
      withApp(async (app) => {
        const { account, result, accessToken, refreshed } = await usableAccessToken(app, accountId);
        if (accessToken === null || (result && !result.success && result.reason === 'needs_reauth')) {
          throw failureToCliError(result, account.status);
        }
        if (result && !result.success) {
          // The refresh failed but the old token still works: hand it out, and say so.
          process.stderr.write(`warning: refresh failed (${describe(result)}); printing the current token\n`);
        }
        if (options.json) {
          console.log(
            JSON.stringify({
              access_token: accessToken,
              expires_at: account.expiresAt === null ? null : new Date(account.expiresAt).toISOString(),
              refreshed,
            }),
          );
        } else {
          console.log(accessToken);
        }
      }),
    );

  program
    .command('refresh')
    .description(
      'refresh an account now through its platform, whatever the expiry; or, with --due or --all, ' +
        'run one pass of the background refresher',
    )
    .argument('[accountId]')
    .option('--due', 'refresh every account the refresh policy says is due now')
    .option('--all', 'refresh every active account')
    .option('--json', 'with --due/--all: print the summary as JSON')
    .action((accountId: string | undefined, options: { due?: boolean; all?: boolean; json?: boolean }) => {
      const modes = [accountId !== undefined, options.due === true, options.all === true].filter(Boolean);
      if (modes.length !== 1) {
        throw new CliError('give exactly one of: an account id, --due, --all', EXIT.usage);
      }
      if (options.due || options.all) return refreshPass(options.all === true, options.json === true);
      return withApp(async (app) => {
        const { account, result } = await app.tokens.refreshOAuthToken(accountId!);
        if (!result?.success) throw failureToCliError(result, account.status);
        const expires =
          account.expiresAt === null
            ? 'no expiry given'
            : `expires ${new Date(account.expiresAt).toISOString()}`;
        console.log(`refreshed ${account.id} (${account.provider}), ${expires}`);
      });
    });
}

/** One refresher pass from the command line, with a progress bar on a terminal and a summary. */
function refreshPass(everyActive: boolean, json: boolean): Promise<void> {
  return withApp(async (app) => {
    const refresher = app.createRefresher();
    const total = everyActive ? await app.accounts.countActive() : await refresher.countDue();
    const bar = new SingleBar(
      {
        stream: process.stderr,
        format:
          ' {bar} {value}/{total} accounts | {refreshed} refreshed, {failed} failed | ETA {eta_formatted}',
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    const tally = { refreshed: 0, failed: 0 };
    bar.start(total, 0, tally);
    const summary = await refresher.runPass({
      everyActive,
      onAccount(outcome) {
        if (outcome === 'refreshed') tally.refreshed++;
        if (outcome === 'failed') tally.failed++;
        // Accounts scheduled during the pass can make the count grow past the first estimate.
        if (bar.getProgress() >= 1) bar.setTotal(bar.getTotal() + 1);
        bar.increment(1, tally);
      },
    });
    bar.stop();
    if (json) {
      console.log(JSON.stringify(summary));
    } else {
      const o = summary.outcomes;
      console.log(
        `${everyActive ? 'all active' : 'due'} accounts: ${summary.claimed} taken in ${(summary.durationMs / 1000).toFixed(1)}s — ` +
          `${o.refreshed} refreshed, ${o.skipped} skipped, ${o.postponed} postponed, ${o.failed} failed (retried later), ` +
          `${o.needs_reauth} need re-authorization`,
      );
      for (const [provider, counts] of Object.entries(summary.byProvider)) {
        const taken = Object.values(counts).reduce((a, b) => a + b, 0);
        if (taken === 0) continue;
        console.log(
          `  ${provider.padEnd(10)} ${counts.refreshed} refreshed, ${counts.failed} failed, ${counts.needs_reauth} need re-authorization`,
        );
      }
    }
    if (summary.outcomes.failed > 0) process.exitCode = EXIT.failed;
  });
}

function describe(result: OAuthRefreshResult): string {
  return [result.reason, result.providerErrorCode].filter(Boolean).join(': ');
}

function failureToCliError(result: OAuthRefreshResult | null, status: string): CliError {
  if (status !== 'active' || result?.reason === 'needs_reauth' || result?.reason === 'no_refresh_token') {
    return new CliError(
      `account is ${status === 'active' ? 'needs_reauth' : status}${result ? ` (${describe(result)})` : ''}: its user must connect it again`,
      EXIT.needsReauth,
    );
  }
  return new CliError(`no valid token: ${result ? describe(result) : 'token expired'}`, EXIT.failed);
}
