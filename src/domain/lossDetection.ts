import type { OAuthEvent, OAuthEventType } from './ledger.js';

/**
 * Whether a rotating platform may have spent the account's refresh token without our storing the
 * new one: decided from everything the ledger holds since the grant was last known good, not from
 * its latest row. A `keys_rotated` row, or a later attempt answered 503, must not hide an earlier
 * attempt that went unanswered (issue 10, item 3).
 */

/** Rows after which the stored refresh token is known to be the living one. */
export const GRANT_CONFIRMED_TYPES: readonly OAuthEventType[] = [
  'refreshed',
  'connected',
  'reconnected',
  'imported',
];

/** Provider error codes of a request that may have reached the platform but got no answer. */
export const UNANSWERED_CODES: ReadonlySet<string> = new Set(['timeout', 'network_error']);

/** Why a history suggests a loss, or null: for the ledger's detail and for logs. */
export type PossibleLossCause =
  /** A refresh got no answer: the platform may have rotated the token. */
  | 'unanswered_refresh'
  /** A refresher's lease lapsed unreleased: it died or stalled mid-refresh. */
  | 'abandoned_lease'
  /** The platform answered 2xx and the new tokens could not be stored (they may be journaled). */
  | 'unsaved_tokens'
  /** The platform answered 2xx with a body we could not read. */
  | 'unreadable_success'
  /** A server error: the platform may fail after it has rotated the token. */
  | 'server_error';

const CAUSES: ReadonlySet<string> = new Set([
  'unanswered_refresh',
  'abandoned_lease',
  'unsaved_tokens',
  'unreadable_success',
  'server_error',
]);

/**
 * `history`: the account's rows since the last row of GRANT_CONFIRMED_TYPES, oldest first (rows
 * before it may be passed too; they are ignored).
 */
export function possibleLossCause(history: readonly OAuthEvent[]): PossibleLossCause | null {
  let start = 0;
  history.forEach((event, index) => {
    if (GRANT_CONFIRMED_TYPES.includes(event.type)) start = index + 1;
  });
  for (const event of history.slice(start)) {
    const detail = event.detail ?? {};
    if (typeof detail.possibleLossCause === 'string' && CAUSES.has(detail.possibleLossCause))
      return detail.possibleLossCause as PossibleLossCause;
    if (detail.unreadableSuccess === true) return 'unreadable_success';
    if (detail.unsavedTokens === true) return 'unsaved_tokens';
    if (detail.afterAbandonedLease === true) return 'abandoned_lease';
    if (event.type === 'refresh_failed' && UNANSWERED_CODES.has(event.providerErrorCode ?? ''))
      return 'unanswered_refresh';
  }
  return null;
}
