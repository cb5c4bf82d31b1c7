import { z } from 'zod';
import { ConfigurationError } from '../domain/errors.js';
import { INSTAGRAM_DEFAULT_GRAPH_VERSION, INSTAGRAM_GRAPH_VERSION_PATTERN } from './instagram/oauthClient.js';
import { DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } from './tiktok/chunkPlan.js';

/**
 * What the platform publishing clients read from the environment. Kept beside the clients (and
 * out of src/config.ts, which the publication service owns) so that `loadConfig` can include it as
 * one field: `publishingPlatforms: loadPlatformPublishingSettings(env)`.
 */
export interface PlatformPublishingSettings {
  /** TIKTOK_CHUNK_BYTES: TikTok's chunk size, 5–64 MB (MB = 1,000,000); default 10,000,000 as in TikTok's example. */
  tiktokChunkBytes: number;
  /** TIKTOK_DEFAULT_PRIVACY: the privacy_level when a call names none; SELF_ONLY, the only one unaudited apps may use. */
  tiktokDefaultPrivacy: string;
  /** INSTAGRAM_GRAPH_VERSION: the Graph API version, the same as the OAuth client's node calls. */
  instagramGraphApiVersion: string;
  /** YOUTUBE_CHUNK_BYTES: a multiple of 256 KiB; default 100 MiB. */
  youtubeChunkBytes: number;
  /** Attempts in a row without progress before a transient failure escapes to the service. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How often, and how many times, `publish` looks at a post still processing before it answers `processing`. */
  tiktokStatusIntervalMs: number;
  tiktokStatusLooks: number;
  instagramStatusIntervalMs: number;
  instagramStatusLooks: number;
}

const YOUTUBE_GRANULE = 256 * 1024;

export const DEFAULT_PLATFORM_PUBLISHING_SETTINGS: PlatformPublishingSettings = {
  tiktokChunkBytes: DEFAULT_CHUNK_BYTES,
  tiktokDefaultPrivacy: 'SELF_ONLY',
  instagramGraphApiVersion: INSTAGRAM_DEFAULT_GRAPH_VERSION,
  // 100 MiB (400 x 256 KiB), the chunk of Google's own API client libraries. Chunks are streamed from
  // disk, so memory does not grow with them; each chunk waits for YouTube's 308 before the next, and
  // at 8 MiB that stop-and-wait cost a third of a single PUT's throughput (docs/PERFORMANCE.md).
  // An interrupted chunk is not lost: the probe's Range says how much of it YouTube kept.
  youtubeChunkBytes: 400 * YOUTUBE_GRANULE,
  maxAttempts: 6,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  // TikTok allows 30 status/fetch calls per minute per token; one every 5 s leaves room for others.
  tiktokStatusIntervalMs: 5_000,
  tiktokStatusLooks: 60,
  // Meta: "query a container's status once per minute, for no more than 5 minutes".
  instagramStatusIntervalMs: 60_000,
  instagramStatusLooks: 5,
};

const wholeNumber = z.string().trim().regex(/^\d+$/).transform(Number);

export function loadPlatformPublishingSettings(
  env: NodeJS.ProcessEnv = process.env,
): PlatformPublishingSettings {
  const settings = { ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS };
  const read = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const tiktokChunk = read('TIKTOK_CHUNK_BYTES');
  if (tiktokChunk !== undefined) {
    const parsed = wholeNumber.safeParse(tiktokChunk);
    if (!parsed.success || parsed.data < MIN_CHUNK_BYTES || parsed.data > MAX_CHUNK_BYTES) {
      throw new ConfigurationError(
        `TIKTOK_CHUNK_BYTES must be a whole number from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} (TikTok's 5 to 64 MB), got "${tiktokChunk}".`,
      );
    }
    settings.tiktokChunkBytes = parsed.data;
  }
  const privacy = read('TIKTOK_DEFAULT_PRIVACY');
  if (privacy !== undefined) {
    if (
      !['PUBLIC_TO_EVERYONE', 'MUTUAL_FOLLOW_FRIENDS', 'FOLLOWER_OF_CREATOR', 'SELF_ONLY'].includes(privacy)
    ) {
      throw new ConfigurationError(
        `TIKTOK_DEFAULT_PRIVACY must be PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY, got "${privacy}".`,
      );
    }
    settings.tiktokDefaultPrivacy = privacy;
  }
  const version = read('INSTAGRAM_GRAPH_VERSION');
  if (version !== undefined) {
    if (!INSTAGRAM_GRAPH_VERSION_PATTERN.test(version)) {
      throw new ConfigurationError(`INSTAGRAM_GRAPH_VERSION must look like v26.0, got "${version}".`);
    }
    settings.instagramGraphApiVersion = version;
  }
  const youtubeChunk = read('YOUTUBE_CHUNK_BYTES');
  if (youtubeChunk !== undefined) {
    const parsed = wholeNumber.safeParse(youtubeChunk);
    if (!parsed.success || parsed.data === 0 || parsed.data % YOUTUBE_GRANULE !== 0) {
      throw new ConfigurationError(
        `YOUTUBE_CHUNK_BYTES must be a positive multiple of 262144 (256 KiB), got "${youtubeChunk}".`,
      );
    }
    settings.youtubeChunkBytes = parsed.data;
  }
  return settings;
}
