import type { ProviderCapabilities } from './capabilities.js';
import { needsAccessTokenRefresh } from './token.js';

/**
 * When an account must be refreshed to stay alive, and when its access token should be refreshed
 * ahead of use. Pure: time and randomness come in as arguments; the platform's nature comes in as
 * its capability record, never as its name. docs/REFRESH-POLICY.md explains every rule.
 */

const SECOND = 1000;
const DAY = 86_400 * SECOND;

/** What the policy needs from an account: times in epoch ms, no secret. */
export interface KeepAliveState {
  /** A refresh token is stored (for self-refreshing platforms: an access token is). */
  hasCredential: boolean;
  expiresAt: number | null;
  refreshTokenExpiresAt: number | null;
  tokenIssuedAt: number | null;
  /** Our last successful refresh: the last time the refresh token was used. */
  lastRefreshAt: number | null;
}

export interface KeepAlivePolicySettings {
  /** Refresh at the latest this long before the point of no return, leaving time for retries. */
  marginSeconds: number;
  /** …but never more than this fraction of the credential's lifetime (short test-mode lifetimes). */
  marginFraction: number;
  /** Refreshes are spread at random over this window before the latest safe time. */
  jitterSeconds: number;
  /** Refresh this often when the platform gave no lifetime at all: the refresh will tell us one. */
  unknownLifetimeIntervalSeconds: number;
  /** Backoff of the background retry after a failed keep-alive refresh. */
  retryBaseSeconds: number;
  retryMaxSeconds: number;
}

export const DEFAULT_KEEP_ALIVE_SETTINGS: KeepAlivePolicySettings = {
  marginSeconds: 3 * 86_400,
  marginFraction: 0.1,
  jitterSeconds: 6 * 3_600,
  unknownLifetimeIntervalSeconds: 30 * 86_400,
  retryBaseSeconds: 60,
  retryMaxSeconds: 6 * 3_600,
};

/** Why an account is kept alive when it is: for logs, docs and tests. */
export type DeadlineKind =
  /** Instagram: the access token is the credential; once expired it cannot be refreshed. */
  | 'access_token_expiry'
  /** TikTok: refresh_expires_in. */
  | 'refresh_token_expiry'
  /** Google: a refresh token unused for about six months dies. */
  | 'refresh_token_idle'
  /** Nothing was said about lifetimes: refresh now and then to learn one. */
  | 'unknown_lifetime'
  /** No credential to refresh with: the access token's expiry is the end. */
  | 'no_credential'
  /** Google Testing mode: the refresh token dies on a fixed day that refreshing does not move. */
  | 'grant_end';

export interface PointOfNoReturn {
  /** Epoch ms after which no refresh can save the account; null when nothing is known. */
  at: number | null;
  kind: DeadlineKind;
  /** When the credential that dies at `at` began (for the margin's fraction of its lifetime). */
  since: number | null;
}

/**
 * When the grant ends whatever we do: a refresh token whose fixed expiry refreshing does not move
 * (Google apps in "Testing" status: `refresh_token_expires_in`, 7 days). On a rotating platform
 * (TikTok) each refresh brings a new refresh token and a new expiry, and a self-refreshing one
 * (Instagram) has none: null there, and when no expiry is known.
 */
export function grantEndsAt(
  state: Pick<KeepAliveState, 'hasCredential' | 'refreshTokenExpiresAt'>,
  capabilities: Pick<ProviderCapabilities, 'rotatesRefreshToken' | 'refreshesAccessTokenItself'>,
): number | null {
  if (capabilities.rotatesRefreshToken || capabilities.refreshesAccessTokenItself) return null;
  return state.hasCredential ? state.refreshTokenExpiresAt : null;
}

/**
 * The first moment after which the account cannot be refreshed any more: the earliest of the
 * deadlines that apply to the platform.
 */
export function pointOfNoReturn(state: KeepAliveState, capabilities: ProviderCapabilities): PointOfNoReturn {
  if (!state.hasCredential) return { at: state.expiresAt, kind: 'no_credential', since: state.tokenIssuedAt };
  const candidates: PointOfNoReturn[] = [];
  if (capabilities.refreshesAccessTokenItself && state.expiresAt !== null) {
    candidates.push({ at: state.expiresAt, kind: 'access_token_expiry', since: state.tokenIssuedAt });
  }
  const hardEnd = grantEndsAt(state, capabilities);
  if (hardEnd !== null) {
    // No refresh moves it: it is the end, not a deadline to refresh before.
    candidates.push({ at: hardEnd, kind: 'grant_end', since: null });
  } else if (!capabilities.refreshesAccessTokenItself && state.refreshTokenExpiresAt !== null) {
    // A rotating platform's refresh token was issued with the last refresh (or the grant), and
    // each refresh brings a new one with a new expiry.
    candidates.push({ at: state.refreshTokenExpiresAt, kind: 'refresh_token_expiry', since: lastUse(state) });
  }
  if (!capabilities.refreshesAccessTokenItself && capabilities.refreshTokenIdleLifetimeSeconds !== null) {
    const since = lastUse(state);
    candidates.push({
      // An unknown last use could be long ago: treat the idle clock as already run out.
      at: since === null ? null : since + capabilities.refreshTokenIdleLifetimeSeconds * SECOND,
      kind: 'refresh_token_idle',
      since,
    });
  }
  const known = candidates.filter((c) => c.at !== null);
  if (candidates.some((c) => c.at === null)) return { at: null, kind: 'refresh_token_idle', since: null };
  if (known.length === 0) return { at: null, kind: 'unknown_lifetime', since: lastUse(state) };
  return known.reduce((a, b) => ((b.at as number) < (a.at as number) ? b : a));
}

/** The refresh token was last used by our last refresh, or issued with the grant. */
function lastUse(state: KeepAliveState): number | null {
  if (state.lastRefreshAt === null) return state.tokenIssuedAt;
  if (state.tokenIssuedAt === null) return state.lastRefreshAt;
  return Math.max(state.lastRefreshAt, state.tokenIssuedAt);
}

/** Before this the platform refuses a refresh (Instagram: the token must be 24 hours old). */
export function earliestRefreshAt(state: KeepAliveState, capabilities: ProviderCapabilities): number | null {
  const minimumAge = capabilities.minimumTokenAgeForRefreshSeconds * SECOND;
  if (minimumAge === 0 || state.tokenIssuedAt === null) return null;
  return state.tokenIssuedAt + minimumAge;
}

/**
 * When the background refresher should refresh the account: as late as is safe, since every
 * refresh is a call to the platform, but with a margin for retries before the point of no return,
 * and spread over a jitter window so that accounts connected in one burst do not all come due in
 * the same minute. `random` is a number in [0, 1).
 *
 * Returns `now` (due) when nothing is known that would allow waiting.
 */
export function keepAliveRefreshAt(
  state: KeepAliveState,
  capabilities: ProviderCapabilities,
  settings: KeepAlivePolicySettings,
  input: { now: number; random: number },
): number {
  const deadline = pointOfNoReturn(state, capabilities);
  const earliest = earliestRefreshAt(state, capabilities) ?? Number.NEGATIVE_INFINITY;
  let latest: number;
  if (deadline.at === null) {
    if (deadline.kind === 'unknown_lifetime' && deadline.since !== null) {
      latest = deadline.since + settings.unknownLifetimeIntervalSeconds * SECOND;
    } else {
      // No credential and no expiry, or a Google refresh token whose last use is unknown: find out
      // now (a refresh either starts the idle clock or says the account needs its user).
      return Math.max(input.now, earliest);
    }
  } else if (deadline.kind === 'no_credential' || deadline.kind === 'grant_end') {
    // Nothing a refresh could extend: a keep-alive refresh before then only spends a call (the
    // access token is refreshed on demand when someone asks for it). Look at the account when it
    // dies, so that it is flagged for its user.
    return Math.max(input.now, deadline.at);
  } else {
    const lifetime = deadline.since === null ? Number.POSITIVE_INFINITY : deadline.at - deadline.since;
    // Whole milliseconds: the time is stored in a BIGINT column, which refuses a fraction.
    const margin = Math.min(settings.marginSeconds * SECOND, Math.floor(lifetime * settings.marginFraction));
    latest = deadline.at - margin;
  }
  const window = Math.max(0, Math.min(settings.jitterSeconds * SECOND, latest - earliest));
  const target = latest - Math.floor(clampUnit(input.random) * window);
  // Past the latest safe time already (an import with days left): due now, if the platform allows.
  return Math.max(target, earliest, input.now);
}

/**
 * When to try again after a failed keep-alive refresh that left the grant intact: exponential
 * backoff with full jitter, never sooner than the platform's Retry-After or its minimum token age.
 * A dead account (needs re-authorization) is never retried: it is not active any more.
 */
export function keepAliveRetryAt(
  input: {
    now: number;
    /** Consecutive failures, this one included (1 = first failure). */
    failures: number;
    retryAt: number | null;
    earliest: number | null;
    /** The point of no return, if known: a retry is never planned after it when it can be before. */
    deadline: number | null;
    random: () => number;
  },
  settings: KeepAlivePolicySettings,
): number {
  const base = settings.retryBaseSeconds * SECOND;
  const max = settings.retryMaxSeconds * SECOND;
  const cap = Math.min(max, base * 2 ** Math.min(30, Math.max(0, input.failures - 1)));
  // Between half the exponential step and the step: never immediately, never in lockstep.
  let at = input.now + Math.floor(cap / 2) + Math.floor(clampUnit(input.random()) * Math.ceil(cap / 2));
  if (input.deadline !== null && input.deadline > input.now && at >= input.deadline) {
    // Closing in on the point of no return: halve the time left instead of sleeping past it.
    at = input.now + Math.floor((input.deadline - input.now) / 2);
  }
  return Math.max(at, input.retryAt ?? 0, input.earliest ?? 0);
}

/**
 * The least number of refreshes a year that keeps an account alive on a platform whose credential
 * lives `lifetimeSeconds` (each refresh buys one lifetime), for comparing the refresher's cost.
 */
export function minimumRefreshesPerYear(lifetimeSeconds: number): number {
  return (365 * DAY) / (lifetimeSeconds * SECOND);
}

/** What a warm-up for a post at `at` should do with the account's access token now. */
export type WarmUpPlan =
  | { kind: 'ready' }
  | { kind: 'refresh' }
  /** A token refreshed now would expire before `at`: ask again after `askAfter`. */
  | { kind: 'too_early'; askAfter: number };

/**
 * Warm-up for a scheduled post: make sure the token is valid at `at` (plus the threshold). When the
 * current token already will be, nothing is done; when a token refreshed now would not last until
 * then either (TikTok's 2-hour tokens, a post tomorrow), refreshing now only spends a call.
 */
export function warmUpPlan(
  token: { accessToken: string | null; expiresAt: number | null; tokenIssuedAt: number | null },
  input: { now: number; at: number; thresholdSeconds: number },
): WarmUpPlan {
  if (
    !needsAccessTokenRefresh(token, {
      thresholdSeconds: input.thresholdSeconds,
      now: input.now,
      validAt: input.at,
    })
  )
    return { kind: 'ready' };
  const lifetime =
    token.expiresAt !== null && token.tokenIssuedAt !== null ? token.expiresAt - token.tokenIssuedAt : null;
  const needed = input.at + input.thresholdSeconds * SECOND;
  if (lifetime !== null && lifetime > 0 && input.now + lifetime < needed && token.accessToken !== null) {
    const stillValidNow = token.expiresAt !== null && token.expiresAt > input.now;
    // A minute past the exact point, so that the token refreshed then is not "close to expiry" at `at`.
    if (stillValidNow) return { kind: 'too_early', askAfter: needed - lifetime + 60 * SECOND };
  }
  return { kind: 'refresh' };
}

function clampUnit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return value >= 1 ? 0.999_999 : value;
}
