/**
 * TikTok's chunk rules for FILE_UPLOAD (Content Posting API, "Media Transfer Guide", section
 * "Chunk restrictions", developers.tiktok.com/doc/content-posting-api-media-transfer-guide):
 * - total_chunk_count = floor(video_size / chunk_size);
 * - each chunk at least 5 MB and at most 64 MB, except the last, which takes the trailing bytes and
 *   may reach 128 MB;
 * - a video under 5 MB is one chunk of its whole size (chunk_size = video_size); one over 64 MB
 *   must be sent in several chunks (so floor() may not leave it one chunk);
 * - at least 1 chunk, at most 1,000; chunks are sent in order.
 * MB is 1,000,000 bytes here: the guide's own example cuts 50,000,123 bytes into 10,000,000-byte
 * chunks. The guide does not say MB or MiB outright; the issue pins the decimal reading.
 *
 * One pure function used by both sides: the client plans with it, and the simulator checks an
 * init's plan with `checkChunkPlan`, which restates the rules rather than calling the planner.
 */

export const MB = 1_000_000;
export const MIN_CHUNK_BYTES = 5 * MB;
export const MAX_CHUNK_BYTES = 64 * MB;
export const MAX_LAST_CHUNK_BYTES = 128 * MB;
export const MAX_CHUNK_COUNT = 1000;
/** TikTok's own example and our default (TIKTOK_CHUNK_BYTES). */
export const DEFAULT_CHUNK_BYTES = 10 * MB;

export interface ChunkPlan {
  videoSize: number;
  chunkSize: number;
  totalChunkCount: number;
}

export interface Chunk {
  index: number;
  /** First byte, inclusive. */
  start: number;
  /** Last byte + 1. */
  end: number;
}

export class ChunkPlanError extends Error {
  readonly code = 'invalid_chunk_plan' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ChunkPlanError';
  }
}

/**
 * The plan for a video of `videoSize` bytes with the configured chunk size (clamped to TikTok's
 * 5–64 MB). A chunk size that would need more than 1,000 chunks is raised to the smallest that fits.
 */
export function planChunks(videoSize: number, preferredChunkBytes: number = DEFAULT_CHUNK_BYTES): ChunkPlan {
  if (!Number.isSafeInteger(videoSize) || videoSize <= 0) {
    throw new ChunkPlanError(`A video must have at least one byte (got ${videoSize}).`);
  }
  // A video under 5 MB, or one that fits in one chunk, is sent whole.
  const clamped = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, Math.floor(preferredChunkBytes)));
  if (videoSize < MIN_CHUNK_BYTES || videoSize <= clamped) {
    return { videoSize, chunkSize: videoSize, totalChunkCount: 1 };
  }
  let chunkSize = Math.max(clamped, Math.ceil(videoSize / MAX_CHUNK_COUNT));
  // Over 64 MB, one chunk (floor(size / chunk) = 1) is refused: halve it into two.
  if (videoSize > MAX_CHUNK_BYTES && Math.floor(videoSize / chunkSize) < 2)
    chunkSize = Math.floor(videoSize / 2);
  if (chunkSize > MAX_CHUNK_BYTES) {
    throw new ChunkPlanError(
      `A video of ${videoSize} bytes needs more than ${MAX_CHUNK_COUNT} chunks of at most 64 MB.`,
    );
  }
  const totalChunkCount = Math.floor(videoSize / chunkSize);
  return { videoSize, chunkSize, totalChunkCount };
}

/** Chunk `index` of a plan: all are `chunkSize` long but the last, which takes the trailing bytes. */
export function chunkAt(plan: ChunkPlan, index: number): Chunk {
  const start = index * plan.chunkSize;
  const end = index === plan.totalChunkCount - 1 ? plan.videoSize : start + plan.chunkSize;
  return { index, start, end };
}

/** The chunk that starts at `offset` (TikTok's `uploaded_bytes`), or the one that contains it. */
export function chunkIndexAt(plan: ChunkPlan, offset: number): number {
  return Math.min(plan.totalChunkCount - 1, Math.max(0, Math.floor(offset / plan.chunkSize)));
}

/**
 * Why an init's plan breaks TikTok's rules, in the words of the rule, or null when it keeps them.
 * Written from the guide's list, independently of `planChunks`.
 */
export function checkChunkPlan(plan: ChunkPlan): string | null {
  const { videoSize, chunkSize, totalChunkCount } = plan;
  if (![videoSize, chunkSize, totalChunkCount].every((n) => Number.isSafeInteger(n) && n > 0)) {
    return 'video_size, chunk_size and total_chunk_count must be positive integers';
  }
  if (videoSize < MIN_CHUNK_BYTES) {
    return chunkSize === videoSize && totalChunkCount === 1
      ? null
      : 'a video under 5 MB must be uploaded whole: chunk_size = video_size, total_chunk_count = 1';
  }
  if (chunkSize < MIN_CHUNK_BYTES || chunkSize > MAX_CHUNK_BYTES) return 'chunk_size must be 5 MB to 64 MB';
  if (totalChunkCount !== Math.floor(videoSize / chunkSize)) {
    return 'total_chunk_count must be floor(video_size / chunk_size)';
  }
  if (totalChunkCount > MAX_CHUNK_COUNT) return 'there may be at most 1000 chunks';
  if (videoSize > MAX_CHUNK_BYTES && totalChunkCount < 2) {
    return 'a video over 64 MB must be uploaded in multiple chunks';
  }
  const last = videoSize - (totalChunkCount - 1) * chunkSize;
  if (last > MAX_LAST_CHUNK_BYTES) return 'the last chunk may be at most 128 MB';
  return null;
}
