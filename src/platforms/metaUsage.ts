import type { AnswerHeaders } from './providerHttp.js';

/**
 * Meta's usage headers, read before Meta throttles us. Rate Limits page
 * (developers.facebook.com/docs/graph-api/overview/rate-limiting), "Headers": `X-App-Usage` is a
 * JSON object `{call_count, total_cputime, total_time}`, each "a whole number expressing the
 * percentage" of the app's allowance used; `X-Business-Use-Case-Usage` (the Business Use Case
 * limits that apply to the Instagram Platform) maps each business id to a list of
 * `{type, call_count, total_cputime, total_time, estimated_time_to_regain_access}`, the last in
 * minutes. Throttling starts when any of the percentages reaches 100.
 */
export interface MetaUsage {
  /** X-App-Usage: the app's usage over all its users, in percent; null when absent. */
  appPercent: number | null;
  /**
   * X-Business-Use-Case-Usage: the highest usage among the businesses the answer names, in percent;
   * null when absent. For the Instagram Platform a business is one Instagram account (Rate Limits,
   * "Business Use Case Rate Limits": calls within 24 hours = 4800 × the account's impressions).
   */
  businessPercent: number | null;
  /** The longest `estimated_time_to_regain_access`, in milliseconds; 0 when none is above 0. */
  regainAccessMs: number;
}

const PERCENT_FIELDS = ['call_count', 'total_cputime', 'total_time'] as const;

/** Reads both headers; null when Meta sent neither (or nothing readable): absent is not 0 %. */
export function readMetaUsage(headers: AnswerHeaders): MetaUsage | null {
  const app = parseObject(headers.get('x-app-usage'));
  const appPercent = app === null ? null : highestPercent([app]);
  const business = parseObject(headers.get('x-business-use-case-usage'));
  const entries: Record<string, unknown>[] = [];
  for (const list of Object.values(business ?? {})) {
    if (!Array.isArray(list)) continue;
    for (const entry of list) if (typeof entry === 'object' && entry !== null) entries.push(entry);
  }
  const businessPercent = highestPercent(entries);
  let regainMinutes = 0;
  for (const entry of entries) {
    const regain = entry.estimated_time_to_regain_access;
    if (typeof regain === 'number' && Number.isFinite(regain) && regain > 0) {
      regainMinutes = Math.max(regainMinutes, regain);
    }
  }
  if (appPercent === null && businessPercent === null && regainMinutes === 0) return null;
  return { appPercent, businessPercent, regainAccessMs: regainMinutes * 60_000 };
}

function highestPercent(entries: Record<string, unknown>[]): number | null {
  let percent: number | null = null;
  for (const entry of entries) {
    for (const field of PERCENT_FIELDS) {
      const value = entry[field];
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
        percent = Math.max(percent ?? 0, value);
      }
    }
  }
  return percent;
}

/** Below this, calls go at the configured rate. */
export const SLOW_DOWN_FROM_PERCENT = 75;
/**
 * The longest a usage header holds the platform's lane. A caller of `authenticate()` may be waiting
 * behind the hold (REFRESH_WAIT_TIMEOUT_MS is 90 s by default): a throttle Meta announces for longer
 * is left to the RateLimited error of the call that meets it.
 */
export const MAX_HOLD_MS = 60_000;

/**
 * How long to hold every further call to the platform after an answer carrying `usage`. Only the
 * app's usage counts: it is shared by every account, so slowing the whole lane is what keeps it
 * under 100 %. A business (one Instagram account) near its own limit must not stall the others;
 * its `estimated_time_to_regain_access` becomes that account's wait when Meta throttles it
 * (RateLimited.retryAfterMs). Nothing below 75 %, then growing with the square of the distance to
 * 100 % (80 % → 2.4 s, 90 % → 21.6 s, 95 % → 38.4 s), the whole minute from 100 %.
 */
export function backPressureHoldMs(usage: MetaUsage | null): number {
  const percent = usage?.appPercent ?? null;
  if (percent === null || percent < SLOW_DOWN_FROM_PERCENT) return 0;
  if (percent >= 100) return MAX_HOLD_MS;
  const closeness = (percent - SLOW_DOWN_FROM_PERCENT) / (100 - SLOW_DOWN_FROM_PERCENT);
  return Math.round(MAX_HOLD_MS * closeness * closeness);
}

function parseObject(value: string | null): Record<string, unknown> | null {
  if (value === null || value.trim() === '') return null;
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
