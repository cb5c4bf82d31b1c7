import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ACCOUNT_STATUSES, type AccountStatus, toPublicAccount } from '../../domain/account.js';
import { isProviderName } from '../../platforms/registry.js';
import { CliError, EXIT, withApp } from '../context.js';

export function registerAccounts(program: Command): void {
  const accounts = program.command('accounts').description('list and import social accounts');

  accounts
    .command('list')
    .description('list accounts (never their tokens)')
    .option('--json', 'print one JSON array')
    .option('--owner <ownerId>', 'only this owner')
    .option('--status <status>', `only this status (${ACCOUNT_STATUSES.join('|')})`)
    .option('--provider <provider>', 'only this platform')
    .action((options: { json?: boolean; owner?: string; status?: string; provider?: string }) => {
      if (options.status !== undefined && !(ACCOUNT_STATUSES as readonly string[]).includes(options.status)) {
        throw new CliError(`--status must be one of ${ACCOUNT_STATUSES.join(', ')}`, EXIT.usage);
      }
      if (options.provider !== undefined && !isProviderName(options.provider)) {
        throw new CliError('--provider must be instagram, tiktok or youtube', EXIT.usage);
      }
      return withApp(async (app) => {
        const all = [];
        let afterId: string | undefined;
        for (;;) {
          const page = await app.accounts.list({
            ownerId: options.owner,
            status: options.status as AccountStatus | undefined,
            provider: options.provider as never,
            afterId,
            limit: 500,
          });
          all.push(...page.map(toPublicAccount));
          if (page.length < 500) break;
          afterId = page.at(-1)!.id;
        }
        if (options.json) {
          console.log(JSON.stringify(all, null, 2));
          return;
        }
        if (all.length === 0) {
          console.log('no accounts');
          return;
        }
        const rows = all.map((a) => [
          a.id,
          a.provider,
          a.externalAccountId,
          a.displayName ?? '',
          a.status,
          a.expiresAt ?? '-',
        ]);
        printTable(['ID', 'PROVIDER', 'EXTERNAL ID', 'NAME', 'STATUS', 'EXPIRES AT'], rows);
      });
    });

  accounts
    .command('import')
    .description('import accounts and tokens from a JSON-lines file; all lines or none')
    .argument(
      '<file>',
      'JSONL: owner_id, provider, external_account_id, display_name, access_token, refresh_token, expires_at, scopes',
    )
    .action((file: string) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new CliError(
          `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
          EXIT.usage,
        );
      }
      return withApp(async (app) => {
        const outcome = await app.accounts.import(text);
        if (outcome.errors.length > 0) {
          for (const error of outcome.errors) console.error(`${file}:${error.line}: ${error.message}`);
          throw new CliError(`${outcome.errors.length} bad line(s); nothing was imported`, EXIT.usage);
        }
        console.log(`imported ${outcome.imported} account(s)`);
      });
    });
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
