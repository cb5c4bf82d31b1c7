import type { Clock } from '../../src/domain/clock.js';
import type { ProviderName } from '../../src/domain/providerName.js';
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
  const names: Record<ProviderName, [string, string]> = {
    instagram: ['INSTAGRAM_CLIENT_ID', 'INSTAGRAM'],
    tiktok: ['TIKTOK_CLIENT_KEY', 'TIKTOK'],
    youtube: ['YOUTUBE_CLIENT_ID', 'YOUTUBE'],
  };
  for (const provider of Object.keys(names) as ProviderName[]) {
    const [idVar, prefix] = names[provider];
    env[idVar] = SIM_CLIENTS[provider].clientId;
    env[`${prefix}_CLIENT_SECRET`] = SIM_CLIENTS[provider].clientSecret;
    env[`${prefix}_REDIRECT_URI`] = `${redirectBase}/oauth/${provider}/callback`;
    env[`${prefix}_BASE_URL`] = simulator.baseUrlFor(provider);
  }
  return env;
}
