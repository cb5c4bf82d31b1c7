/** Kinds of rows in the append-only OAuth ledger (`oauth_events`). Rows never hold a secret. */
export const OAUTH_EVENT_TYPES = [
  'connected',
  'reconnected',
  'imported',
  'refreshed',
  'refresh_failed',
  'needs_reauth',
  'revoked',
  'deleted',
  'keys_rotated',
  /** A connect refused after consent (a required scope not granted): nothing was stored. */
  'connect_refused',
  /** The grant dies at a known time, soon (refresh-token end of life): the owner should reconnect. */
  'expiring',
] as const;
export type OAuthEventType = (typeof OAUTH_EVENT_TYPES)[number];

export interface OAuthEvent {
  id: string;
  accountId: string;
  type: OAuthEventType;
  /** Our reason code (see RefreshFailureReason) or a short word for the event. */
  reason: string | null;
  /** The platform's own error code (`invalid_grant`, `190`, …), when there was one. */
  providerErrorCode: string | null;
  /** Small non-secret details (HTTP status, attempt count, …). */
  detail: Record<string, unknown> | null;
  createdAt: number;
  /** Position in the ledger, for pagination. */
  seq: number;
}

export interface NewOAuthEvent {
  accountId: string;
  type: OAuthEventType;
  reason?: string | null;
  providerErrorCode?: string | null;
  detail?: Record<string, unknown> | null;
}
