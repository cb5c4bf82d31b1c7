import type { ProviderName } from '../domain/providerName.js';
import { INSTAGRAM_CAPABILITIES } from './instagram/oauthClient.js';
import type { ProviderCapabilities } from './provider.js';
import { TIKTOK_CAPABILITIES } from './tiktok/oauthClient.js';
import { YOUTUBE_CAPABILITIES } from './youtube/oauthClient.js';

/**
 * Every platform's capability record by name, whether or not its credentials are configured: the
 * refresh schedule of a stored account does not depend on this process being able to refresh it.
 */
export const PROVIDER_CAPABILITIES: Readonly<Record<ProviderName, ProviderCapabilities>> = {
  instagram: INSTAGRAM_CAPABILITIES,
  tiktok: TIKTOK_CAPABILITIES,
  youtube: YOUTUBE_CAPABILITIES,
};
