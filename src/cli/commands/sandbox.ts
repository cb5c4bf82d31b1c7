import type { Command } from 'commander';
import { runSandbox } from '../../simulator/main.js';
import { CliError, EXIT } from '../context.js';

export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description(
      'run the provider simulator (TikTok, Instagram and Google wire formats) for local development',
    )
    .option('--port <port>', 'port to listen on (0 = any free port)', '4010')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (options: { port: string; host: string }) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new CliError('--port must be 0..65535', EXIT.usage);
      const simulator = await runSandbox({ port, host: options.host });
      await waitForSignal();
      await simulator.close();
    });
}

export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
