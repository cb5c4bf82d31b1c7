import type { Command } from 'commander';
import type { OAuthRefreshResult } from '../../domain/token.js';
import { CliError, EXIT, withApp } from '../context.js';

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('print a valid access token for an account, refreshing it first when needed')
    .argument('<accountId>')
    .option('--json', 'print {access_token, expires_at, refreshed} as JSON')
    .action((accountId: string, options: { json?: boolean }) =>
      withApp(async (app) => {
        const { account, result } = await app.tokens.ensureValidAccessToken(accountId);
        const usable =
          account.status === 'active' &&
          account.accessToken !== null &&
          (account.expiresAt ?? Infinity) > app.clock.now();
        if (!usable || (result && !result.success && result.reason === 'needs_reauth')) {
          throw failureToCliError(result, account.status);
        }
        if (result && !result.success) {
          // The refresh failed but the old token still works: hand it out, and say so.
          process.stderr.write(`warning: refresh failed (${describe(result)}); printing the current token\n`);
        }
        if (options.json) {
          console.log(
            JSON.stringify({
              access_token: account.accessToken,
              expires_at: account.expiresAt === null ? null : new Date(account.expiresAt).toISOString(),
              refreshed: result?.success === true && result.attempts > 0,
            }),
          );
        } else {
          console.log(account.accessToken);
        }
      }),
    );

  program
    .command('refresh')
    .description('refresh an account now through its platform, whatever the expiry')
    .argument('<accountId>')
    .action((accountId: string) =>
      withApp(async (app) => {
        const { account, result } = await app.tokens.refreshOAuthToken(accountId);
        if (!result?.success) throw failureToCliError(result, account.status);
        const expires =
          account.expiresAt === null
            ? 'no expiry given'
            : `expires ${new Date(account.expiresAt).toISOString()}`;
        console.log(`refreshed ${account.id} (${account.provider}), ${expires}`);
      }),
    );
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
