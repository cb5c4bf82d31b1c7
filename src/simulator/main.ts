import type { Logger } from '../domain/logger.js';
import { PROVIDER_NAMES } from '../platforms/registry.js';
import {
  type ProviderSimulator,
  type ProviderSimulatorOptions,
  startProviderSimulator,
} from './simulator.js';

export interface SandboxOptions extends ProviderSimulatorOptions {
  /** Where the base URLs are announced; console when not given (the CLI's sandbox command). */
  logger?: Logger;
}

/**
 * Starts the simulator for local development and prints the environment that points the service
 * at it. The process keeps running until the returned simulator is closed.
 */
export async function runSandbox(options: SandboxOptions = {}): Promise<ProviderSimulator> {
  const simulator = await startProviderSimulator({ port: 0, ...options });
  const baseUrls = Object.fromEntries(
    PROVIDER_NAMES.map((name) => [`${name.toUpperCase()}_BASE_URL`, simulator.baseUrlFor(name)]),
  );
  if (options.logger) {
    options.logger.info({ url: simulator.url, ...baseUrls }, 'provider simulator listening');
  } else {
    console.log(`Provider simulator listening on ${simulator.url}`);
    console.log('Point the service at it with:');
    for (const [key, value] of Object.entries(baseUrls)) console.log(`  export ${key}=${value}`);
    console.log('Authorize URLs accept sim_account=<id>, sim_name=<name> and sim_deny=1 to choose the user.');
  }
  return simulator;
}
