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
  // Issue 13: every state change of a publication (detail.publicationId says which).
  'publication_queued',
  'publication_uploading',
  'publication_processing',
  'publication_published',
  'publication_sent_to_inbox',
  'publication_failed',
  'publication_needs_reauth',
] as const;
export type OAuthEventType = (typeof OAUTH_EVENT_TYPES)[number];

/** The publication events (issue 13), apart from the OAuth ones. */
export const PUBLICATION_EVENT_TYPES = OAUTH_EVENT_TYPES.filter((type) => type.startsWith('publication_'));

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
