import { describe, expect, it } from 'vitest';
import { ChunkPlanError, checkChunkPlan, chunkAt, chunkIndexAt, planChunks } from './chunkPlan.js';

const MB = 1_000_000;

describe("TikTok's chunk plan (Media Transfer Guide, Chunk restrictions)", () => {
  it.each([
    // [name, video size, preferred chunk, expected chunk_size, total_chunk_count, last chunk]
    [
      "the guide's example: 50,000,123 bytes in 10,000,000-byte chunks",
      50_000_123,
      10 * MB,
      10 * MB,
      5,
      10_000_123,
    ],
    ['under 5 MB: one chunk of the whole size', 4_999_999, 10 * MB, 4_999_999, 1, 4_999_999],
    ['one byte', 1, 10 * MB, 1, 1, 1],
    ['exactly 5 MB, smaller than the chunk: whole', 5 * MB, 10 * MB, 5 * MB, 1, 5 * MB],
    ['fits in one chunk: whole', 9_999_999, 10 * MB, 9_999_999, 1, 9_999_999],
    ['exactly one chunk', 10 * MB, 10 * MB, 10 * MB, 1, 10 * MB],
    ['one byte over one chunk: the last takes it', 10 * MB + 1, 10 * MB, 10 * MB, 1, 10 * MB + 1],
    ['just under two chunks: the last is almost two', 20 * MB - 1, 10 * MB, 10 * MB, 1, 20 * MB - 1],
    ['4 GB in 10 MB chunks', 4_000_000_000, 10 * MB, 10 * MB, 400, 10 * MB],
    ['a chunk size below 5 MB is raised to 5 MB', 12 * MB, 1 * MB, 5 * MB, 2, 7 * MB],
    ['a chunk size above 64 MB is lowered to 64 MB', 200 * MB, 100 * MB, 64 * MB, 3, 72 * MB],
    ['more than 1,000 chunks: the chunk grows until 1,000 fit', 6_000_000_000, 5 * MB, 6 * MB, 1000, 6 * MB],
    ['over 64 MB but under two 64 MB chunks: two halves', 127 * MB, 64 * MB, 63_500_000, 2, 63_500_000],
    ['1 GiB in the default chunks', 1_073_741_824, 10 * MB, 10 * MB, 107, 13_741_824],
  ])('%s', (_name, size, preferred, chunkSize, count, last) => {
    const plan = planChunks(size, preferred);
    expect(plan).toEqual({ videoSize: size, chunkSize, totalChunkCount: count });
    expect(checkChunkPlan(plan)).toBeNull();
    const lastChunk = chunkAt(plan, plan.totalChunkCount - 1);
    expect(lastChunk.end - lastChunk.start).toBe(last);
    expect(lastChunk.end).toBe(size);
  });

  it('chunks cover the video in order without gaps', () => {
    const plan = planChunks(50_000_123, 10 * MB);
    const chunks = Array.from({ length: plan.totalChunkCount }, (_, i) => chunkAt(plan, i));
    expect(chunks.map((c) => [c.start, c.end])).toEqual([
      [0, 10 * MB],
      [10 * MB, 20 * MB],
      [20 * MB, 30 * MB],
      [30 * MB, 40 * MB],
      [40 * MB, 50_000_123],
    ]);
    expect(chunkIndexAt(plan, 30 * MB)).toBe(3);
    expect(chunkIndexAt(plan, 50_000_123)).toBe(4);
  });

  it('refuses an empty video and one too big for 1,000 chunks of 64 MB', () => {
    expect(() => planChunks(0)).toThrow(ChunkPlanError);
    expect(() => planChunks(64_000_000_001)).toThrow(ChunkPlanError);
  });

  it.each([
    [
      'total_chunk_count rounded up instead of down',
      { videoSize: 50_000_123, chunkSize: 10 * MB, totalChunkCount: 6 },
    ],
    ['a chunk under 5 MB', { videoSize: 20 * MB, chunkSize: 4 * MB, totalChunkCount: 5 }],
    ['a chunk over 64 MB', { videoSize: 130 * MB, chunkSize: 65 * MB, totalChunkCount: 2 }],
    ['a small video cut in pieces', { videoSize: 4 * MB, chunkSize: 2 * MB, totalChunkCount: 2 }],
    ['more than 1,000 chunks', { videoSize: 5_005 * MB, chunkSize: 5 * MB, totalChunkCount: 1001 }],
    [
      'a chunk size bigger than the video (zero chunks)',
      { videoSize: 7 * MB, chunkSize: 10 * MB, totalChunkCount: 0 },
    ],
    ['a video over 64 MB in one chunk', { videoSize: 100 * MB, chunkSize: 64 * MB, totalChunkCount: 1 }],
  ])('checkChunkPlan refuses %s', (_name, plan) => {
    expect(checkChunkPlan(plan)).not.toBeNull();
  });
});
