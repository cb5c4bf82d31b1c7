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
      { appPercent: 41, businessPercent: null, regainAccessMs: 0 },
    ],
    [
      'X-Business-Use-Case-Usage: the highest over every business and entry, and the longest regain time',
      {
        'x-business-use-case-usage': businessUsage([
          { call_count: 12, total_cputime: 3, total_time: 5, estimated_time_to_regain_access: 0 },
          { call_count: 96, total_cputime: 20, total_time: 30, estimated_time_to_regain_access: 7 },
        ]),
      },
      { appPercent: null, businessPercent: 96, regainAccessMs: 7 * 60_000 },
    ],
    [
      'both headers, kept apart: the app is shared by every account, a business is one account',
      {
        'x-app-usage': appUsage(81, 2, 2),
        'x-business-use-case-usage': businessUsage([{ call_count: 60, total_cputime: 1, total_time: 1 }]),
      },
      { appPercent: 81, businessPercent: 60, regainAccessMs: 0 },
    ],
    ['an unreadable header is ignored', { 'x-app-usage': '{call_count: 99' }, null],
    ['an array is not the documented object', { 'x-app-usage': '[99]' }, null],
  ];
  it.each(cases)('%s', (_rule, headers, expected) => {
    expect(readMetaUsage(new Headers(headers))).toEqual(expected);
  });
});

describe('backPressureHoldMs', () => {
  const cases: Array<[appPercent: number, holdMs: number]> = [
    [0, 0],
    [74, 0],
    [75, 0],
    [80, 2_400],
    [90, 21_600],
    [95, 38_400],
    [100, MAX_HOLD_MS],
    [130, MAX_HOLD_MS],
  ];
  it.each(cases)('app usage at %i %% holds the lane %i ms', (appPercent, holdMs) => {
    expect(backPressureHoldMs({ appPercent, businessPercent: null, regainAccessMs: 0 })).toBe(holdMs);
  });

  it('holds nothing when Meta sent no usage', () => {
    expect(backPressureHoldMs(null)).toBe(0);
  });

  it('bug: one throttled Instagram account (its business usage at 100 %) held every account for a minute', () => {
    expect(backPressureHoldMs({ appPercent: 20, businessPercent: 100, regainAccessMs: 60_000 })).toBe(0);
    expect(backPressureHoldMs({ appPercent: null, businessPercent: 100, regainAccessMs: 0 })).toBe(0);
  });
});
