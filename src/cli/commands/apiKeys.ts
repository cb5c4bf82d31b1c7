import type { Command } from 'commander';
import { CliError, EXIT, withApp } from '../context.js';
import { printTable } from './accounts.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function registerApiKeys(program: Command): void {
  const keys = program.command('api-keys').description('API keys for the HTTP service (stored hashed)');
  const open = (app: Parameters<Parameters<typeof withApp>[0]>[0]) => app.apiKeys;

  keys
    .command('create')
    .description('create a key and print it once; only its hash is stored')
    .option('--name <name>', 'what the key is for', 'api key')
    .option('--json', 'print {"key": …, "id": …, "name": …}')
    .action((options: { name: string; json?: boolean }) =>
      withApp(async (app) => {
        const { key, summary } = await open(app).create(options.name);
        if (options.json) {
          console.log(JSON.stringify({ key, id: summary.id, name: summary.name }));
          return;
        }
        console.log(key);
        process.stderr.write(`created API key ${summary.id} ("${summary.name}"); it is not shown again\n`);
      }),
    );

  keys
    .command('list')
    .description('list keys (never the keys themselves)')
    .option('--json', 'print one JSON array')
    .action((options: { json?: boolean }) =>
      withApp(async (app) => {
        const all = await open(app).list();
        if (options.json) {
          console.log(
            JSON.stringify(
              all.map((k) => ({
                id: k.id,
                name: k.name,
                created_at: iso(k.createdAt),
                last_used_at: iso(k.lastUsedAt),
                revoked_at: iso(k.revokedAt),
              })),
            ),
          );
          return;
        }
        if (all.length === 0) {
          console.log('no API keys');
          return;
        }
        printTable(
          ['ID', 'NAME', 'CREATED', 'LAST USED', 'STATUS'],
          all.map((k) => [
            k.id,
            k.name,
            iso(k.createdAt)!,
            iso(k.lastUsedAt) ?? '-',
            k.revokedAt === null ? 'active' : 'revoked',
          ]),
        );
      }),
    );

  keys
    .command('revoke')
    .description('revoke a key by id; a running service refuses it within 5 seconds')
    .argument('<id>')
    .action((id: string) =>
      withApp(async (app) => {
        if (!(await open(app).revoke(id))) throw new CliError(`no active API key with id ${id}`, EXIT.usage);
        console.log(`revoked API key ${id}`);
      }),
    );
}
