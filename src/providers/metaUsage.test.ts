import { describe, expect, it } from 'vitest';
import { backPressureHoldMs, MAX_HOLD_MS, readMetaUsage } from './metaUsage.js';

/** Header values in the shapes of Meta's Rate Limits page ("Headers"). */
const appUsage = (call: number, cpu: number, time: number) =>
  JSON.stringify({ call_count: call, total_cputime: cpu, total_time: time });
const businessUsage = (entries: Array<Record<string, unknown>>) =>
  JSON.stringify({ '17841400000000001': entries.map((entry) => ({ type: 'instagram', ...entry })) });

describe('readMetaUsage', () => {
  const cases: Array<[rule: string, headers: Record<string, string>, expected: unknown]> = [
    ['no usage header: unknown, not 0 %', {}, null],
    [
      'X-App-Usage: the highest of its three percentages',
      { 'x-app-usage': appUsage(28, 7, 41) },
      {
        percent: 41,
        regainAccessMs: 0,
      },
    ],
    [
      'X-Business-Use-Case-Usage: the highest over every business and entry, and the longest regain time',
      {
        'x-business-use-case-usage': businessUsage([
          { call_count: 12, total_cputime: 3, total_time: 5, estimated_time_to_regain_access: 0 },
          { call_count: 96, total_cputime: 20, total_time: 30, estimated_time_to_regain_access: 7 },
        ]),
      },
      { percent: 96, regainAccessMs: 7 * 60_000 },
    ],
    [
      'both headers: the worse of the two',
      {
        'x-app-usage': appUsage(81, 2, 2),
        'x-business-use-case-usage': businessUsage([{ call_count: 60, total_cputime: 1, total_time: 1 }]),
      },
      { percent: 81, regainAccessMs: 0 },
    ],
    ['an unreadable header is ignored', { 'x-app-usage': '{call_count: 99' }, null],
    ['an array is not the documented object', { 'x-app-usage': '[99]' }, null],
  ];
  it.each(cases)('%s', (_rule, headers, expected) => {
    expect(readMetaUsage(new Headers(headers))).toEqual(expected);
  });
});

describe('backPressureHoldMs', () => {
  const cases: Array<[percent: number, regainMinutes: number, holdMs: number]> = [
    [0, 0, 0],
    [74, 0, 0],
    [75, 0, 0],
    [80, 0, 2_400],
    [90, 0, 21_600],
    [95, 0, 38_400],
    [100, 0, MAX_HOLD_MS],
    [130, 0, MAX_HOLD_MS],
    // Meta names a time to regain access: at least that, but never more than the cap.
    [20, 0.5, 30_000],
    [80, 30, MAX_HOLD_MS],
  ];
  it.each(cases)('at %i %% with %d min to regain access, holds %i ms', (percent, regain, holdMs) => {
    expect(backPressureHoldMs({ percent, regainAccessMs: regain * 60_000 })).toBe(holdMs);
  });

  it('holds nothing when Meta sent no usage', () => {
    expect(backPressureHoldMs(null)).toBe(0);
  });
});
