import { describe, expect, it } from 'vitest';
import type { OAuthEvent } from './ledger.js';
import { possibleLossCause } from './lossDetection.js';

let seq = 0;
const row = (
  type: OAuthEvent['type'],
  providerErrorCode: string | null = null,
  detail: OAuthEvent['detail'] = null,
): OAuthEvent => ({
  id: `e${++seq}`,
  accountId: 'a',
  type,
  reason: null,
  providerErrorCode,
  detail,
  createdAt: seq,
  seq,
});

describe('possibleLossCause', () => {
  it('sees an unanswered refresh behind later rows of any kind', () => {
    expect(possibleLossCause([row('refresh_failed', 'timeout'), row('keys_rotated')])).toBe(
      'unanswered_refresh',
    );
    expect(
      possibleLossCause([row('refresh_failed', 'network_error'), row('refresh_failed', 'server_error')]),
    ).toBe('unanswered_refresh');
  });

  it('reads the cause a failed refresh carried forward', () => {
    expect(
      possibleLossCause([row('refresh_failed', 'server_error', { possibleLossCause: 'server_error' })]),
    ).toBe('server_error');
    expect(possibleLossCause([row('refresh_failed', null, { afterAbandonedLease: true })])).toBe(
      'abandoned_lease',
    );
    expect(possibleLossCause([row('refresh_failed', null, { unsavedTokens: true })])).toBe('unsaved_tokens');
  });

  it('forgets everything before the grant was last known good', () => {
    expect(possibleLossCause([row('refresh_failed', 'timeout'), row('refreshed')])).toBeNull();
    expect(
      possibleLossCause([row('refresh_failed', 'timeout'), row('reconnected'), row('keys_rotated')]),
    ).toBeNull();
  });

  it('finds nothing in an ordinary history', () => {
    expect(possibleLossCause([])).toBeNull();
    expect(possibleLossCause([row('connected'), row('refresh_failed', 'rate_limit_exceeded')])).toBeNull();
  });
});
