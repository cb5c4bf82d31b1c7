import { describe, expect, it } from 'vitest';
import { settleLifetime } from './tokenLifetime.js';

const TIKTOK_ACCESS = { maxSeconds: 86_400, fallbackSeconds: 3_600 };

describe('settleLifetime', () => {
  it('keeps a plausible lifetime as given, without a note', () => {
    expect(settleLifetime('expires_in', 7_200, TIKTOK_ACCESS)).toEqual({ seconds: 7_200, note: null });
  });

  it('bug: expires_in of 1e12 was stored (a token never refreshed again): clamped to the documented maximum', () => {
    expect(settleLifetime('expires_in', 1e12, TIKTOK_ACCESS)).toEqual({
      seconds: 86_400,
      note: {
        field: 'expires_in',
        received: 'number 1000000000000',
        usedSeconds: 86_400,
        why: 'above_documented_maximum',
      },
    });
  });

  it.each([
    [undefined, 'missing'],
    [null, 'missing'],
    [0, 'not_positive'],
    [-5, 'not_positive'],
    [0.4, 'not_positive'],
    ['soon', 'unreadable'],
    ['', 'unreadable'],
    [{ s: 1 }, 'unreadable'],
    [[3600], 'unreadable'],
    [true, 'unreadable'],
    [Number.NaN, 'unreadable'],
    [Number.POSITIVE_INFINITY, 'unreadable'],
  ])('replaces %j by the conservative fallback (%s), with a note', (reported, why) => {
    const settled = settleLifetime('expires_in', reported, TIKTOK_ACCESS);
    expect(settled.seconds).toBe(3_600);
    expect(settled.note).toMatchObject({ field: 'expires_in', usedSeconds: 3_600, why });
  });

  it('reads a decimal string, and says so; a huge one is still clamped', () => {
    expect(settleLifetime('expires_in', '7200', TIKTOK_ACCESS)).toMatchObject({
      seconds: 7_200,
      note: { why: 'number_as_string', received: 'string "7200"' },
    });
    expect(settleLifetime('expires_in', '99999999999', TIKTOK_ACCESS).seconds).toBe(86_400);
  });

  it('never repeats a long string in its note (it could be a token sent in the wrong field)', () => {
    const note = settleLifetime('expires_in', 'act.1234567890abcdefghijklmnop', TIKTOK_ACCESS).note;
    expect(note?.received).toBe('a long string');
  });
});
