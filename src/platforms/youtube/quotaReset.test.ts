import { describe, expect, it } from 'vitest';
import { nextPacificMidnight, pacificDayStart } from './quotaReset.js';

describe('YouTube quota reset: the next midnight Pacific', () => {
  it.each([
    // [now (UTC), next reset (UTC)]
    ['winter (PST, UTC-8), morning', '2026-01-15T17:00:00Z', '2026-01-16T08:00:00Z'],
    ['winter, one second before midnight Pacific', '2026-01-16T07:59:59Z', '2026-01-16T08:00:00Z'],
    ['winter, exactly midnight Pacific: the next one', '2026-01-16T08:00:00Z', '2026-01-17T08:00:00Z'],
    ['summer (PDT, UTC-7)', '2026-07-04T12:00:00Z', '2026-07-05T07:00:00Z'],
    ['UTC date already tomorrow, Pacific still today', '2026-07-05T03:00:00Z', '2026-07-05T07:00:00Z'],
    [
      'the day DST starts (2026-03-08): midnight was PST, the next is PDT',
      '2026-03-08T09:00:00Z',
      '2026-03-09T07:00:00Z',
    ],
    ['the evening before DST starts', '2026-03-08T05:00:00Z', '2026-03-08T08:00:00Z'],
    [
      'the day DST ends (2026-11-01): the next midnight is PST',
      '2026-11-01T12:00:00Z',
      '2026-11-02T08:00:00Z',
    ],
    ['the evening before DST ends', '2026-11-01T06:00:00Z', '2026-11-01T07:00:00Z'],
    ['new year in Pacific', '2026-12-31T20:00:00Z', '2027-01-01T08:00:00Z'],
  ])('%s', (_name, now, expected) => {
    expect(new Date(nextPacificMidnight(Date.parse(now))).toISOString()).toBe(
      new Date(expected).toISOString(),
    );
  });

  it('the Pacific day starts at the previous midnight Pacific', () => {
    expect(new Date(pacificDayStart(Date.parse('2026-07-04T12:00:00Z'))).toISOString()).toBe(
      '2026-07-04T07:00:00.000Z',
    );
    expect(new Date(pacificDayStart(Date.parse('2026-01-16T07:59:59Z'))).toISOString()).toBe(
      '2026-01-15T08:00:00.000Z',
    );
  });
});
