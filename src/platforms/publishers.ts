/**
 * One publishing client per platform, from the registry (src/platforms/registry.ts). A client
 * keeps per-token rate windows (TikTok), so build one per process and platform and share it.
 */
export type { PublisherFactory } from './platform.js';
export type { PlatformPublishingSettings } from './publishingSettings.js';
export {
  DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
  loadPlatformPublishingSettings,
} from './publishingSettings.js';
export { PLATFORM_PUBLISHERS } from './registry.js';
