import type { ProviderName } from '../domain/providerName.js';
import { instagram } from './instagram/index.js';
import type { PlatformDefinition, ProviderFactory, PublisherFactory } from './platform.js';
import type { Provider, ProviderCapabilities, ProviderHttpOptions, ProviderSettings } from './provider.js';
import type { RateLimitHintReader } from './rateLimitHints.js';
import { tiktok } from './tiktok/index.js';
import { youtube } from './youtube/index.js';

export type { PlatformDefinition, ProviderFactory, PublisherFactory } from './platform.js';

/**
 * THE list of platforms. Adding one: a folder src/platforms/<name>/ whose index.ts exports its
 * PlatformDefinition, and its name here (or `registerPlatform(definition)` from outside the
 * package). Every table below, the config's env names, the HTTP schemas, the connect labels, the
 * status page, the sandbox and the simulator derive from it.
 */
const BUILT_IN_PLATFORMS: readonly PlatformDefinition[] = [instagram, tiktok, youtube];

const definitions = new Map<ProviderName, PlatformDefinition>();

/**
 * The registered platforms' names, in registration order. One live array (never replaced), so
 * that a schema built from it (the HTTP `provider` enum) sees a platform registered before the
 * app is built.
 */
export const PROVIDER_NAMES: ProviderName[] = [];

/* The tables below are views of the registry by concern, filled by registerPlatform. */
export const PROVIDER_FACTORIES: Record<ProviderName, ProviderFactory> = {};
export const PROVIDER_CAPABILITIES: Record<ProviderName, ProviderCapabilities> = {};
export const PLATFORM_PUBLISHERS: Record<ProviderName, PublisherFactory> = {};
export const RATE_LIMIT_HINT_READERS: Record<ProviderName, RateLimitHintReader> = {};
/**
 * The scopes each platform's client asks for by default, read from the client itself so the list
 * lives in one place per platform (a client's constructor only keeps its settings).
 */
export const PROVIDER_DEFAULT_SCOPES: Record<ProviderName, readonly string[]> = {};

const NAME_PATTERN = /^[a-z][a-z0-9]{1,30}$/;

/**
 * Adds a platform to every place that lists platforms. Call it before loading the config and
 * building the app (those read the registry when they start). A name already registered with the
 * same definition is a no-op; with another definition, an error.
 */
export function registerPlatform(definition: PlatformDefinition): void {
  const existing = definitions.get(definition.name);
  if (existing === definition) return;
  if (existing !== undefined) throw new Error(`platform "${definition.name}" is already registered`);
  if (!NAME_PATTERN.test(definition.name)) {
    throw new Error(`platform name "${definition.name}" must be lower-case letters and digits`);
  }
  definitions.set(definition.name, definition);
  PROVIDER_NAMES.push(definition.name);
  PROVIDER_FACTORIES[definition.name] = definition.createOAuthClient;
  PROVIDER_CAPABILITIES[definition.name] = definition.capabilities;
  if (definition.createPublisher) PLATFORM_PUBLISHERS[definition.name] = definition.createPublisher;
  if (definition.rateLimitHintReader) {
    RATE_LIMIT_HINT_READERS[definition.name] = definition.rateLimitHintReader;
  }
  const placeholder = { clientId: 'unused', clientSecret: 'unused', redirectUri: null, baseUrl: null };
  PROVIDER_DEFAULT_SCOPES[definition.name] = [
    ...definition.createOAuthClient(placeholder, { timeoutMs: 1 }).defaultScopes,
  ];
}

for (const definition of BUILT_IN_PLATFORMS) registerPlatform(definition);

/** Every registered platform, in registration order. */
export function platforms(): readonly PlatformDefinition[] {
  return [...definitions.values()];
}

/** The registered platform of that name; throws for an unknown one (validate at the edges first). */
export function platform(name: ProviderName): PlatformDefinition {
  const found = definitions.get(name);
  if (found === undefined) throw new Error(`unknown platform "${name}"`);
  return found;
}

/** A registered platform's capability record; throws for an unknown name. */
export function capabilitiesOf(name: ProviderName): ProviderCapabilities {
  return platform(name).capabilities;
}

/** What people read for a platform ("TikTok"); the name itself for an unknown one. */
export function platformLabel(name: string): string {
  return definitions.get(name)?.label ?? name;
}

/** Validation at the edges (config, HTTP, import, CLI): is this a registered platform's name? */
export function isProviderName(value: unknown): value is ProviderName {
  return typeof value === 'string' && definitions.has(value);
}

export function createProvider(
  name: ProviderName,
  settings: ProviderSettings,
  http: ProviderHttpOptions,
): Provider {
  return platform(name).createOAuthClient(settings, http);
}
