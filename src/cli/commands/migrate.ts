import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { openDatabase } from '../../store/database.js';
import {
  lastExecutedMigration,
  migrateDown,
  migrateToLatest,
  migrationStatus,
  TOKENS_MIGRATION,
} from '../../store/migrations.js';
import { CliError, EXIT } from '../context.js';

export function registerMigrate(program: Command): void {
  const migrate = program.command('migrate').description('apply or undo database migrations');

  migrate
    .command('up')
    .description('apply every pending migration')
    .action(() =>
      withDatabase(async (store) => {
        const result = await migrateToLatest(store);
        const applied = (result.results ?? [])
          .filter((r) => r.status === 'Success')
          .map((r) => r.migrationName);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
      }),
    );

  migrate
    .command('down')
    .description('undo the last applied migration')
    .option('--yes', 'confirm undoing the tokens migration, which deletes every stored token')
    .action((options: { yes?: boolean }) =>
      withDatabase(async (store) => {
        const last = await lastExecutedMigration(store);
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
        await migrateDown(store);
        console.log(`undone: ${last}`);
      }),
    );

  migrate
    .command('status')
    .description('list migrations and whether they are applied')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) =>
      withDatabase(async (store) => {
        const states = await migrationStatus(store);
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

async function withDatabase(work: (store: ReturnType<typeof openDatabase>) => Promise<void>): Promise<void> {
  const config = loadConfig();
  const store = openDatabase({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  try {
    await work(store);
  } finally {
    await store.close();
  }
}
