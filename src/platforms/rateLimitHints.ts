import { backPressureHoldMs, readMetaUsage } from './metaUsage.js';
import type { AnswerHeaders } from './providerHttp.js';

/**
 * What a platform's usage headers say about our next call: the wall-clock time (epoch ms) before
 * which no further call should start, or null when nothing needs slowing. Read from every answer,
 * successful ones included, so that we slow down before the platform answers 429, not after.
 */
export type RateLimitHintReader = (headers: AnswerHeaders, nowMs: number) => number | null;

/** TikTok documents a one-minute sliding window ("Rate Limits on API Requests"). */
const TIKTOK_WINDOW_MS = 60_000;

/**
 * TikTok's `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset`, where present.
 * TikTok documents the limit (per endpoint, per minute) and the 429 `rate_limit_exceeded`, not
 * these headers: some answers carry them, so they are used when there and never relied upon.
 * `x-ratelimit-reset` is read as epoch seconds, or as seconds from now when it is small.
 * Spent: wait for the reset. Nearly spent (under a tenth of the limit left): spread the calls left
 * over the time to the reset, instead of spending them at once and meeting the 429.
 */
export function readTikTokRateLimitHint(headers: AnswerHeaders, nowMs: number): number | null {
  const remaining = readNumber(headers.get('x-ratelimit-remaining'));
  if (remaining === null) return null;
  const limit = readNumber(headers.get('x-ratelimit-limit'));
  const reset = readNumber(headers.get('x-ratelimit-reset'));
  const resetAtMs =
    reset === null ? nowMs + TIKTOK_WINDOW_MS : reset > 1e9 ? reset * 1000 : nowMs + reset * 1000;
  if (resetAtMs <= nowMs) return null;
  if (remaining <= 0) return resetAtMs;
  if (limit !== null && limit > 0 && remaining < limit / 10) {
    return nowMs + Math.ceil((resetAtMs - nowMs) / (remaining + 1));
  }
  return null;
}

function readNumber(value: string | null): number | null {
  if (value === null || value.trim() === '') return null;
  const parsed = Number(value.trim());
  return Number.isFinite(parsed) ? parsed : null;
}

/**
 * Instagram's X-App-Usage and X-Business-Use-Case-Usage (percentages of the app's and the
 * business's budget, src/platforms/metaUsage.ts): past the threshold, hold further calls.
 */
export function readInstagramUsageHint(headers: AnswerHeaders, nowMs: number): number | null {
  const holdMs = backPressureHoldMs(readMetaUsage(headers));
  return holdMs > 0 ? nowMs + holdMs : null;
}
