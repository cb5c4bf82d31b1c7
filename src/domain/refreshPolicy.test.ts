import { describe, expect, it } from 'vitest';
import { capabilitiesOf } from '../platforms/capabilities.js';
import {
  earliestRefreshAt,
  type KeepAliveState,
  keepAliveRefreshAt,
  keepAliveRetryAt,
  minimumRefreshesPerYear,
  pointOfNoReturn,
  DEFAULT_KEEP_ALIVE_SETTINGS as SETTINGS,
  warmUpPlan,
} from './refreshPolicy.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-06-01T12:00:00Z');
const [instagram, tiktok, youtube] = [
  capabilitiesOf('instagram'),
  capabilitiesOf('tiktok'),
  capabilitiesOf('youtube'),
];

const state = (overrides: Partial<KeepAliveState> = {}): KeepAliveState => ({
  hasCredential: true,
  expiresAt: null,
  refreshTokenExpiresAt: null,
  tokenIssuedAt: NOW,
  lastRefreshAt: null,
  ...overrides,
});

/** The latest moment the policy allows (jitter 0 pulls nothing earlier). */
const latest = (s: KeepAliveState, caps = instagram) =>
  keepAliveRefreshAt(s, caps, SETTINGS, { now: NOW, random: 0 });

describe('point of no return, per platform capability', () => {
  it.each([
    {
      rule: 'Instagram: the access token expiry (no refresh token; an expired token is lost)',
      caps: instagram,
      s: state({ expiresAt: NOW + 60 * DAY }),
      at: NOW + 60 * DAY,
      kind: 'access_token_expiry',
    },
    {
      rule: 'TikTok: the refresh token expiry, whatever the access token does',
      caps: tiktok,
      s: state({ expiresAt: NOW + 2 * HOUR, refreshTokenExpiresAt: NOW + 180 * DAY }),
      at: NOW + 180 * DAY,
      kind: 'refresh_token_expiry',
    },
    {
      rule: 'Google: six months after the refresh token was last used',
      caps: youtube,
      s: state({ expiresAt: NOW + HOUR, tokenIssuedAt: NOW - 10 * DAY, lastRefreshAt: NOW - 3 * DAY }),
      at: NOW - 3 * DAY + 182 * DAY,
      kind: 'refresh_token_idle',
    },
    {
      rule: "Google in Testing mode: the refresh token's fixed expiry ends the grant, whatever is refreshed",
      caps: youtube,
      s: state({ refreshTokenExpiresAt: NOW + 7 * DAY }),
      at: NOW + 7 * DAY,
      kind: 'grant_end',
    },
    {
      rule: 'no credential to refresh with: the access token expiry is the end',
      caps: youtube,
      s: state({ hasCredential: false, expiresAt: NOW + HOUR }),
      at: NOW + HOUR,
      kind: 'no_credential',
    },
  ])('$rule', ({ caps, s, at, kind }) => {
    expect(pointOfNoReturn(s, caps)).toMatchObject({ at, kind });
  });
});

describe('keep-alive refresh time', () => {
  it.each([
    {
      rule: 'Instagram refreshes 3 days before its 60-day token expires',
      caps: instagram,
      s: state({ expiresAt: NOW + 60 * DAY }),
      due: NOW + 57 * DAY,
    },
    {
      rule: 'TikTok refreshes 3 days before the refresh token expires, not when the access token does',
      caps: tiktok,
      s: state({ expiresAt: NOW + 2 * HOUR, refreshTokenExpiresAt: NOW + 180 * DAY }),
      due: NOW + 177 * DAY,
    },
    {
      rule: 'Google refreshes 3 days before six months of idleness',
      caps: youtube,
      s: state({ expiresAt: NOW + HOUR }),
      due: NOW + 179 * DAY,
    },
    {
      rule: 'a short lifetime gets a margin of a tenth of it, not 3 days (a TikTok refresh token of 7 days)',
      caps: tiktok,
      s: state({ refreshTokenExpiresAt: NOW + 7 * DAY }),
      due: NOW + 7 * DAY - 0.7 * DAY,
    },
    {
      // A keep-alive refresh cannot move a Testing-mode expiry: spending one before it only costs
      // a call (and, planned again after each, a growing series of them). Looked at when it ends,
      // to flag the account for its user.
      rule: 'Google in Testing mode spends no keep-alive refresh before the grant ends',
      caps: youtube,
      s: state({ refreshTokenExpiresAt: NOW + 7 * DAY }),
      due: NOW + 7 * DAY,
    },
    {
      rule: 'Google in Testing mode, just refreshed with two hours left: still nothing before the end',
      caps: youtube,
      s: state({ refreshTokenExpiresAt: NOW + 2 * HOUR, tokenIssuedAt: NOW, lastRefreshAt: NOW }),
      due: NOW + 2 * HOUR,
    },
    {
      rule: 'an import with 2 days left is due now',
      caps: instagram,
      s: state({ expiresAt: NOW + 2 * DAY, tokenIssuedAt: NOW - 58 * DAY }),
      due: NOW,
    },
    {
      rule: 'Instagram never comes due before the token is 24 hours old, even when that is too late',
      caps: instagram,
      s: state({ expiresAt: NOW + 2 * HOUR, tokenIssuedAt: NOW - HOUR }),
      due: NOW + 23 * HOUR,
    },
    {
      rule: 'Google with an unknown last use is due now: using it starts the idle clock',
      caps: youtube,
      s: state({ tokenIssuedAt: null }),
      due: NOW,
    },
    {
      rule: 'no lifetime given at all: refresh after 30 days to learn one',
      caps: tiktok,
      s: state({ refreshTokenExpiresAt: null }),
      due: NOW + 30 * DAY,
    },
    {
      rule: 'no credential: looked at when the access token dies, to flag it for its user',
      caps: tiktok,
      s: state({ hasCredential: false, expiresAt: NOW + 5 * HOUR }),
      due: NOW + 5 * HOUR,
    },
  ])('$rule', ({ caps, s, due }) => {
    expect(latest(s, caps)).toBe(due);
  });

  it('bug: a grant lifetime not divisible by ten gave a fractional time that PostgreSQL refused to store', () => {
    const at = latest(state({ tokenIssuedAt: NOW, refreshTokenExpiresAt: NOW + 12 * HOUR + 7 }), tiktok);
    expect(Number.isInteger(at)).toBe(true);
  });

  it('a refresh on demand moves the Google deadline: the refresh token was just used', () => {
    const idle = state({ tokenIssuedAt: NOW - 100 * DAY, lastRefreshAt: NOW });
    expect(latest(idle, youtube)).toBe(NOW + 179 * DAY);
  });

  it('spreads a burst over the 6-hour jitter window, never later than the latest safe time', () => {
    const s = state({ expiresAt: NOW + 60 * DAY });
    const times = [0, 0.25, 0.5, 0.999].map((random) =>
      keepAliveRefreshAt(s, instagram, SETTINGS, { now: NOW, random }),
    );
    expect(times[0]).toBe(NOW + 57 * DAY);
    expect(times[3]).toBeGreaterThan(NOW + 57 * DAY - 6 * HOUR);
    expect(new Set(times).size).toBe(4);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it('jitter never pulls Instagram before its 24-hour minimum age', () => {
    const s = state({ expiresAt: NOW + 26 * HOUR, tokenIssuedAt: NOW });
    const at = keepAliveRefreshAt(
      s,
      instagram,
      { ...SETTINGS, marginSeconds: 3600 },
      { now: NOW, random: 0.999 },
    );
    expect(at).toBeGreaterThanOrEqual(earliestRefreshAt(s, instagram)!);
  });
});

describe('retry after a failed keep-alive refresh', () => {
  const retry = (failures: number, extra: Partial<Parameters<typeof keepAliveRetryAt>[0]> = {}) =>
    keepAliveRetryAt(
      { now: NOW, failures, retryAt: null, earliest: null, deadline: null, random: () => 0, ...extra },
      SETTINGS,
    );

  it('backs off exponentially from a minute, capped at 6 hours: a dead account is not hammered', () => {
    expect(retry(1) - NOW).toBe(30_000);
    expect(retry(2) - NOW).toBe(60_000);
    expect(retry(5) - NOW).toBe(16 * 30_000);
    expect(retry(100) - NOW).toBe(3 * HOUR);
    expect(retry(100, { random: () => 0.999 }) - NOW).toBeLessThanOrEqual(6 * HOUR);
  });

  it("never retries sooner than the platform's Retry-After", () => {
    expect(retry(1, { retryAt: NOW + HOUR })).toBe(NOW + HOUR);
  });

  it('halves the time left instead of sleeping past the point of no return', () => {
    expect(retry(100, { deadline: NOW + 2 * HOUR })).toBe(NOW + HOUR);
  });
});

describe('warm-up for a scheduled post', () => {
  const input = { now: NOW, thresholdSeconds: 300 };

  it('does nothing when the current token is still valid at the post time', () => {
    const token = { accessToken: 'a', expiresAt: NOW + 50 * DAY, tokenIssuedAt: NOW - 10 * DAY };
    expect(warmUpPlan(token, { ...input, at: NOW + 2 * DAY })).toEqual({ kind: 'ready' });
  });

  it('refreshes when a token refreshed now lasts until the post', () => {
    const token = { accessToken: 'a', expiresAt: NOW + 10 * 60_000, tokenIssuedAt: NOW - 110 * 60_000 };
    expect(warmUpPlan(token, { ...input, at: NOW + HOUR })).toEqual({ kind: 'refresh' });
  });

  it('says "too early" when a 2-hour token refreshed now would expire before a post tomorrow', () => {
    const token = { accessToken: 'a', expiresAt: NOW + HOUR, tokenIssuedAt: NOW - HOUR };
    expect(warmUpPlan(token, { ...input, at: NOW + DAY })).toEqual({
      kind: 'too_early',
      askAfter: NOW + DAY + 300_000 - 2 * HOUR + 60_000,
    });
  });
});

describe('least cost', () => {
  it('counts one refresh per credential lifetime a year', () => {
    expect(minimumRefreshesPerYear(60 * 86_400)).toBeCloseTo(6.083, 3);
    expect(minimumRefreshesPerYear(180 * 86_400)).toBeCloseTo(2.028, 3);
  });
});
