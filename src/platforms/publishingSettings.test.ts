import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../domain/errors.js';
import {
  DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
  loadPlatformPublishingSettings,
} from './publishingSettings.js';

describe('platform publishing settings from the environment', () => {
  it('defaults: TikTok 10,000,000-byte chunks and SELF_ONLY, Instagram v26.0, YouTube 100 MiB', () => {
    expect(loadPlatformPublishingSettings({})).toEqual(DEFAULT_PLATFORM_PUBLISHING_SETTINGS);
    expect(DEFAULT_PLATFORM_PUBLISHING_SETTINGS).toMatchObject({
      tiktokChunkBytes: 10_000_000,
      tiktokDefaultPrivacy: 'SELF_ONLY',
      instagramGraphApiVersion: 'v26.0',
      youtubeChunkBytes: 100 * 1024 * 1024,
    });
  });

  it('reads the variables', () => {
    expect(
      loadPlatformPublishingSettings({
        TIKTOK_CHUNK_BYTES: '64000000',
        TIKTOK_DEFAULT_PRIVACY: 'FOLLOWER_OF_CREATOR',
        INSTAGRAM_GRAPH_VERSION: 'v24.0',
        YOUTUBE_CHUNK_BYTES: String(256 * 1024),
      }),
    ).toMatchObject({
      tiktokChunkBytes: 64_000_000,
      tiktokDefaultPrivacy: 'FOLLOWER_OF_CREATOR',
      instagramGraphApiVersion: 'v24.0',
      youtubeChunkBytes: 262_144,
    });
  });

  it.each([
    ['TIKTOK_CHUNK_BYTES', '4999999'],
    ['TIKTOK_CHUNK_BYTES', '64000001'],
    ['TIKTOK_CHUNK_BYTES', '10MB'],
    ['TIKTOK_DEFAULT_PRIVACY', 'PUBLIC'],
    ['INSTAGRAM_GRAPH_VERSION', '23'],
    ['YOUTUBE_CHUNK_BYTES', '1000000'],
  ])('refuses %s=%s with a clear error', (name, value) => {
    expect(() => loadPlatformPublishingSettings({ [name]: value })).toThrow(ConfigurationError);
    expect(() => loadPlatformPublishingSettings({ [name]: value })).toThrow(name);
  });
});
