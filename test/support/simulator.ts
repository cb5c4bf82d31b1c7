import type { Clock } from '../../src/domain/clock.js';
import { PROVIDER_NAMES, platform } from '../../src/platforms/registry.js';
import { type ProviderSimulator, startProviderSimulator } from '../../src/simulator/simulator.js';

export const SIM_CLIENTS = {
  instagram: { clientId: 'sim-ig-app', clientSecret: 'sim-ig-secret' },
  tiktok: { clientId: 'sim-tiktok-key', clientSecret: 'sim-tiktok-secret' },
  youtube: { clientId: 'sim-google-client', clientSecret: 'sim-google-secret' },
} as const;

export async function startTestSimulator(
  options: { clock?: Clock; latencyMs?: number } = {},
): Promise<ProviderSimulator> {
  return startProviderSimulator({ port: 0, clients: SIM_CLIENTS, ...options });
}

/** Environment that points every provider at the simulator, as a deployment would with <P>_BASE_URL. */
export function simulatorEnv(
  simulator: Pick<ProviderSimulator, 'baseUrlFor'>,
  redirectBase = 'http://127.0.0.1:8080',
): Record<string, string> {
  const env: Record<string, string> = {};
  // Every registered platform, with its own variable names; a platform registered by a test
  // (test/fourthPlatform.test.ts) gets the simulator's "any client" credentials.
  for (const provider of PROVIDER_NAMES) {
    const names = platform(provider).env;
    const client: { clientId: string; clientSecret: string } = SIM_CLIENTS[
      provider as keyof typeof SIM_CLIENTS
    ] ?? { clientId: `sim-${provider}-client`, clientSecret: `sim-${provider}-secret` };
    env[names.clientId] = client.clientId;
    env[names.clientSecret] = client.clientSecret;
    env[names.redirectUri] = `${redirectBase}/oauth/${provider}/callback`;
    env[names.baseUrl] = simulator.baseUrlFor(provider);
  }
  return env;
}
