import type { ProviderName } from '../domain/providerName.js';
import type { PlatformPublisher } from '../publishing/platformPublisher.js';
import { InstagramPublisher } from './instagram/publishing.js';
import type { ProviderHttpOptions, ProviderSettings } from './publishingHttp.js';
import type { PlatformPublishingSettings } from './publishingSettings.js';
import { TikTokPublisher } from './tiktok/publishing.js';
import { YouTubePublisher } from './youtube/publishing.js';

/**
 * One publishing client per platform. `settings.baseUrl` is the platform's `<PROVIDER>_BASE_URL`
 * (null = the real hosts, upload hosts included); URLs the platform hands out (YouTube's session
 * URI, TikTok's upload_url) are used as given. A client keeps per-token rate windows (TikTok), so
 * build one per process and platform and share it.
 */
export type PublisherFactory = (
  settings: Pick<ProviderSettings, 'baseUrl'>,
  http: ProviderHttpOptions,
  config: PlatformPublishingSettings,
) => PlatformPublisher;

export const PLATFORM_PUBLISHERS: Readonly<Record<ProviderName, PublisherFactory>> = {
  instagram: (settings, http, config) => new InstagramPublisher(settings, http, config),
  tiktok: (settings, http, config) => new TikTokPublisher(settings, http, config),
  youtube: (settings, http, config) => new YouTubePublisher(settings, http, config),
};

export type { PlatformPublishingSettings } from './publishingSettings.js';
export {
  DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
  loadPlatformPublishingSettings,
} from './publishingSettings.js';
