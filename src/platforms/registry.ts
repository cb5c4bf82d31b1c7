import { PROVIDER_NAMES, type ProviderName } from '../domain/providerName.js';
import { InstagramProvider } from './instagram/oauthClient.js';
import type { Provider, ProviderHttpOptions, ProviderSettings } from './provider.js';
import { TikTokProvider } from './tiktok/oauthClient.js';
import { YouTubeProvider } from './youtube/oauthClient.js';

export type ProviderFactory = (settings: ProviderSettings, http: ProviderHttpOptions) => Provider;

/** Adding a platform: one file in src/providers and one line here (and its name in ProviderName). */
export const PROVIDER_FACTORIES: Readonly<Record<ProviderName, ProviderFactory>> = {
  instagram: (settings, http) => new InstagramProvider(settings, http),
  tiktok: (settings, http) => new TikTokProvider(settings, http),
  youtube: (settings, http) => new YouTubeProvider(settings, http),
};

export function createProvider(
  name: ProviderName,
  settings: ProviderSettings,
  http: ProviderHttpOptions,
): Provider {
  return PROVIDER_FACTORIES[name](settings, http);
}

/**
 * The scopes each platform's client asks for by default, read from the clients themselves so the
 * list lives in one place per platform (a client's constructor only keeps its settings).
 */
export const PROVIDER_DEFAULT_SCOPES: Readonly<Record<ProviderName, readonly string[]>> = (() => {
  const placeholder = { clientId: 'unused', clientSecret: 'unused', redirectUri: null, baseUrl: null };
  const table = {} as Record<ProviderName, readonly string[]>;
  for (const name of PROVIDER_NAMES) {
    table[name] = [...createProvider(name, placeholder, { timeoutMs: 1 }).defaultScopes];
  }
  return table;
})();
