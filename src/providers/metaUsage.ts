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
  /** The highest percentage in either header. */
  percent: number;
  /** The longest `estimated_time_to_regain_access`, in milliseconds; 0 when none is above 0. */
  regainAccessMs: number;
}

const PERCENT_FIELDS = ['call_count', 'total_cputime', 'total_time'] as const;

/** Reads both headers; null when Meta sent neither (or nothing readable): absent is not 0 %. */
export function readMetaUsage(headers: AnswerHeaders): MetaUsage | null {
  const entries: Record<string, unknown>[] = [];
  const app = parseObject(headers.get('x-app-usage'));
  if (app !== null) entries.push(app);
  const business = parseObject(headers.get('x-business-use-case-usage'));
  if (business !== null) {
    for (const list of Object.values(business)) {
      if (!Array.isArray(list)) continue;
      for (const entry of list) if (typeof entry === 'object' && entry !== null) entries.push(entry);
    }
  }
  let percent: number | null = null;
  let regainMinutes = 0;
  for (const entry of entries) {
    for (const field of PERCENT_FIELDS) {
      const value = entry[field];
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
        percent = Math.max(percent ?? 0, value);
      }
    }
    const regain = entry.estimated_time_to_regain_access;
    if (typeof regain === 'number' && Number.isFinite(regain) && regain > 0) {
      regainMinutes = Math.max(regainMinutes, regain);
    }
  }
  if (percent === null && regainMinutes === 0) return null;
  return { percent: percent ?? 0, regainAccessMs: regainMinutes * 60_000 };
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
 * How long to hold further calls to the platform after an answer carrying `usage`: nothing below
 * 75 %, then growing with the square of the distance to 100 % (80 % → 2.4 s, 90 % → 21.6 s,
 * 95 % → 38.4 s), the whole minute at 100 % or when Meta already names a time to regain access.
 */
export function backPressureHoldMs(usage: MetaUsage | null): number {
  if (usage === null) return 0;
  const regain = Math.min(usage.regainAccessMs, MAX_HOLD_MS);
  if (usage.percent >= 100) return MAX_HOLD_MS;
  if (usage.percent < SLOW_DOWN_FROM_PERCENT) return regain;
  const closeness = (usage.percent - SLOW_DOWN_FROM_PERCENT) / (100 - SLOW_DOWN_FROM_PERCENT);
  return Math.max(regain, Math.round(MAX_HOLD_MS * closeness * closeness));
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
