import type { PlatformPublisher } from '../publishing/platformPublisher.js';
import type { PlatformSimulator } from '../simulator/platformRoutes.js';
import type { Provider, ProviderCapabilities, ProviderHttpOptions, ProviderSettings } from './provider.js';
import type { PlatformPublishingSettings } from './publishingSettings.js';
import type { RateLimitHintReader } from './rateLimitHints.js';

// What the simulator needs of a platform; defined beside the simulator's routes (which import no platform).
export type { PlatformSimulator };

export type ProviderFactory = (settings: ProviderSettings, http: ProviderHttpOptions) => Provider;

/**
 * One publishing client per platform. `settings.baseUrl` is the platform's `<PROVIDER>_BASE_URL`
 * (null = the real hosts, upload hosts included).
 */
export type PublisherFactory = (
  settings: Pick<ProviderSettings, 'baseUrl'>,
  http: ProviderHttpOptions,
  config: PlatformPublishingSettings,
) => PlatformPublisher;

/** The environment variables a platform is configured by. */
export interface PlatformEnvNames {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  baseUrl: string;
  /** Comma- or space-separated scopes an account must hold; unset = the client's default scopes. */
  requiredScopes: string;
  /** Requests per second to the platform (the outbound gate). */
  rateLimitRps: string;
  /** Where the platform versions its API: the variable, its default and its form. */
  apiVersion?: { name: string; fallback: string; pattern: RegExp; example: string };
}

/** What `start` in sandbox mode needs: credentials the simulator accepts and a sample account. */
export interface PlatformSandbox {
  client: { clientId: string; clientSecret: string };
  /**
   * The sample account's access-token expiry relative to now (ms): negative = already expired, so
   * the first API call refreshes it through the simulator.
   */
  sampleAccessExpiresInMs: number;
  /**
   * The sample account's id at the platform, when `sample-<name>` is not one the platform's paths
   * accept (Instagram's publishing paths take only a numeric user id). Not the simulator's default
   * consent: a connect tried from the sandbox must make a new account, not reconnect the sample.
   */
  sampleExternalAccountId?: string;
}

/**
 * Everything that is one platform's, in one value exported by `src/platforms/<name>/index.ts`.
 * Every other place (names, config, labels, status page, sandbox, simulator, gate) derives from
 * the registry's list of these (src/platforms/registry.ts).
 */
export interface PlatformDefinition {
  /** Lower-case path segment and stored `provider` value, e.g. "tiktok". */
  name: string;
  /** What people read: "TikTok". */
  label: string;
  /** The status page's logo tile. */
  logoLetters: string;
  env: PlatformEnvNames;
  capabilities: ProviderCapabilities;
  createOAuthClient: ProviderFactory;
  createPublisher?: PublisherFactory;
  rateLimitHintReader?: RateLimitHintReader;
  simulator: PlatformSimulator;
  sandbox: PlatformSandbox;
}

/** The env names every platform gets unless it says otherwise: `<NAME>_CLIENT_ID` and so on. */
export function defaultEnvNames(name: string): PlatformEnvNames {
  const prefix = name.toUpperCase();
  return {
    clientId: `${prefix}_CLIENT_ID`,
    clientSecret: `${prefix}_CLIENT_SECRET`,
    redirectUri: `${prefix}_REDIRECT_URI`,
    baseUrl: `${prefix}_BASE_URL`,
    requiredScopes: `${prefix}_REQUIRED_SCOPES`,
    rateLimitRps: `${prefix}_RATE_LIMIT_RPS`,
  };
}
