import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { MigrationService, TOKENS_MIGRATION } from '../../service/migrationService.js';
import { CliError, EXIT } from '../context.js';

export function registerMigrate(program: Command): void {
  const migrate = program.command('migrate').description('apply or undo database migrations');

  migrate
    .command('up')
    .description('apply every pending migration')
    .action(() =>
      withMigrations(async (migrations) => {
        const applied = await migrations.up();
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
      }),
    );

  migrate
    .command('down')
    .description('undo the last applied migration')
    .option('--yes', 'confirm undoing the tokens migration, which deletes every stored token')
    .action((options: { yes?: boolean }) =>
      withMigrations(async (migrations) => {
        const last = await migrations.lastApplied();
        if (last === null) {
          console.log('nothing to undo');
          return;
        }
        if (last === TOKENS_MIGRATION && !options.yes) {
          throw new CliError(
            `undoing ${TOKENS_MIGRATION} DELETES EVERY STORED TOKEN; every account would have to be connected again. ` +
              'Run again with --yes to confirm.',
            EXIT.usage,
          );
        }
        if (last === TOKENS_MIGRATION)
          console.error(`warning: deleting all stored tokens (${TOKENS_MIGRATION})`);
        await migrations.down();
        console.log(`undone: ${last}`);
      }),
    );

  migrate
    .command('status')
    .description('list migrations and whether they are applied')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      withMigrations(async (migrations) => {
        const states = await migrations.status();
        if (options.json) {
          console.log(
            JSON.stringify(
              states.map((s) => ({ name: s.name, appliedAt: s.executedAt?.toISOString() ?? null })),
            ),
          );
          return;
        }
        for (const state of states) {
          console.log(
            `${state.executedAt ? 'applied ' : 'pending '} ${state.name}${state.executedAt ? `  ${state.executedAt.toISOString()}` : ''}`,
          );
        }
      }),
    );
}

async function withMigrations(work: (migrations: MigrationService) => Promise<void>): Promise<void> {
  const migrations = MigrationService.open(loadConfig());
  try {
    await work(migrations);
  } finally {
    await migrations.close();
  }
}
