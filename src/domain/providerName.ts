/**
 * A platform's name ("tiktok"). Which names exist is the platform registry's business
 * (src/platforms/registry.ts: PROVIDER_NAMES, isProviderName), checked at the edges (config, HTTP
 * schemas, import, CLI); the domain only carries the name.
 */
export type ProviderName = string;
