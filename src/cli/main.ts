#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAccounts } from './commands/accounts.js';
import { registerApiKeys } from './commands/apiKeys.js';
import { registerKeys } from './commands/keys.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPublications } from './commands/publications.js';
import { registerPublish } from './commands/publish.js';
import { registerSandbox } from './commands/sandbox.js';
import { registerServe } from './commands/serve.js';
import { registerStart } from './commands/start.js';
import { registerToken } from './commands/token.js';
import { registerWorker } from './commands/worker.js';
import { EXIT, reportError } from './context.js';

export function buildProgram(): Command {
  const program = new Command()
    .name('social-oauth')
    .description('Keeps OAuth tokens for Instagram, TikTok and YouTube accounts valid.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  registerStart(program);
  registerMigrate(program);
  registerAccounts(program);
  registerToken(program);
  registerWorker(program);
  registerKeys(program);
  registerSandbox(program);
  registerServe(program);
  registerApiKeys(program);
  registerPublish(program);
  registerPublications(program);
  const override = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; it already printed what it had to say.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return reportError(error);
  }
}

const exitCode = await main();
// Long-running commands (start, sandbox) keep the process alive themselves and never get here
// until they stop.
process.exitCode = exitCode;
