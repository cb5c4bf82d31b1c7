import { describe, expect, it } from 'vitest';
import { nextMidnightIn, zoneOffsetMs } from './timeZones.js';

const LA = 'America/Los_Angeles';

describe('time zones', () => {
  it('knows Los Angeles is UTC−8 in winter and UTC−7 in summer', () => {
    expect(zoneOffsetMs(LA, Date.parse('2026-01-15T12:00:00Z'))).toBe(-8 * 3_600_000);
    expect(zoneOffsetMs(LA, Date.parse('2026-07-15T12:00:00Z'))).toBe(-7 * 3_600_000);
  });

  it.each([
    ['an ordinary winter day', '2026-12-02T12:00:00Z', '2026-12-03T08:00:00Z'],
    ['an ordinary summer day', '2026-07-15T10:00:00Z', '2026-07-16T07:00:00Z'],
    ['just before midnight', '2026-12-03T07:59:59Z', '2026-12-03T08:00:00Z'],
    ['exactly at midnight (the next one)', '2026-12-03T08:00:00Z', '2026-12-04T08:00:00Z'],
    // 2026-03-08: clocks go forward at 02:00 PST; that day is 23 hours long.
    ['the day clocks go forward', '2026-03-08T12:00:00Z', '2026-03-09T07:00:00Z'],
    ['the evening before clocks go forward', '2026-03-08T07:30:00Z', '2026-03-08T08:00:00Z'],
    // 2026-11-01: clocks go back at 02:00 PDT; that day is 25 hours long.
    ['the day clocks go back', '2026-11-01T12:00:00Z', '2026-11-02T08:00:00Z'],
    ['the evening before clocks go back', '2026-11-01T06:30:00Z', '2026-11-01T07:00:00Z'],
  ])('finds the next midnight in Los Angeles on %s', (_case, now, expected) => {
    expect(new Date(nextMidnightIn(LA, Date.parse(now))).toISOString()).toBe(
      new Date(Date.parse(expected)).toISOString(),
    );
  });
});
