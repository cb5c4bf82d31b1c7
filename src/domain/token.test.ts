import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';
import { isTokenExpiredOrClose, needsAccessTokenRefresh } from './token.js';

const clock = new ManualClock(Date.parse('2026-06-01T12:00:00Z'));
const now = clock.now();
const token = (expiresInMs: number | null) => ({
  accessToken: 'a-token',
  expiresAt: expiresInMs === null ? null : now + expiresInMs,
});

describe('isTokenExpiredOrClose', () => {
  it('is false when the token expires after the threshold', () => {
    expect(isTokenExpiredOrClose(token(300_001), 300, clock)).toBe(false);
  });

  it('is true exactly at the threshold boundary', () => {
    expect(isTokenExpiredOrClose(token(300_000), 300, clock)).toBe(true);
  });

  it('is true inside the threshold, at expiry and after it', () => {
    expect(isTokenExpiredOrClose(token(299_999), 300, clock)).toBe(true);
    expect(isTokenExpiredOrClose(token(0), 300, clock)).toBe(true);
    expect(isTokenExpiredOrClose(token(-1), 300, clock)).toBe(true);
  });

  it('uses a 300-second threshold by default', () => {
    expect(isTokenExpiredOrClose(token(301_000), undefined, clock)).toBe(false);
    expect(isTokenExpiredOrClose(token(299_000), undefined, clock)).toBe(true);
  });

  it('with a zero threshold, a token expiring in one millisecond is still valid', () => {
    expect(isTokenExpiredOrClose(token(1), 0, clock)).toBe(false);
    expect(isTokenExpiredOrClose(token(0), 0, clock)).toBe(true);
  });

  it('treats a missing access token as expired', () => {
    expect(isTokenExpiredOrClose({ accessToken: null, expiresAt: now + 3_600_000 }, 300, clock)).toBe(true);
  });

  it('treats a token without a known expiry as valid', () => {
    expect(isTokenExpiredOrClose(token(null), 300, clock)).toBe(false);
  });
});

describe('needsAccessTokenRefresh', () => {
  it('asks for a refresh when the token will be close to expiry at a future validAt (warm-up)', () => {
    const oneHour = 3_600_000;
    expect(needsAccessTokenRefresh(token(oneHour), { thresholdSeconds: 300, now })).toBe(false);
    expect(
      needsAccessTokenRefresh(token(oneHour), { thresholdSeconds: 300, now, validAt: now + oneHour }),
    ).toBe(true);
  });

  it('never looks into the past: a validAt before now means now', () => {
    expect(needsAccessTokenRefresh(token(600_000), { thresholdSeconds: 300, now, validAt: now - 1e9 })).toBe(
      false,
    );
  });
});
