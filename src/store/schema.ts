import type { Generated } from 'kysely';

/**
 * Table shapes as stored. Times are epoch milliseconds (INTEGER on SQLite, BIGINT on PostgreSQL,
 * read back as numbers) so both databases return the same values. Token columns hold AES-256-GCM
 * ciphertexts (see tokenCipher.ts), never plaintext.
 */
export interface SocialAccountsTable {
  id: string;
  owner_id: string;
  provider: string;
  external_account_id: string;
  /** The platform's other id for the same account (Instagram: the code exchange's user_id), if any. */
  alternate_external_id: string | null;
  display_name: string | null;
  oauth_access_token: string | null;
  oauth_refresh_token: string | null;
  oauth_expires_at: number | null;
  oauth_refresh_expires_at: number | null;
  oauth_scopes: string; // JSON array
  status: string;
  token_issued_at: number | null;
  version: number;
  last_refresh_at: number | null;
  last_error: string | null;
  /** Cross-process refresh lease: who holds it and until when (epoch ms). */
  refresh_lease_owner: string | null;
  refresh_lease_until: number | null;
  /** When the background refresher should refresh the account (epoch ms); null when not active. */
  next_refresh_at: number | null;
  /** Consecutive failed refreshes, for the background retry's backoff; 0 after a success. */
  refresh_failures: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface OAuthEventsTable {
  id: string;
  account_id: string;
  type: string;
  reason: string | null;
  provider_error_code: string | null;
  detail: string | null; // JSON object
  created_at: number;
  /** Insertion order, for stable pagination. */
  seq: Generated<number>;
}

/** A pending authorization (issue 3). `id` is the SHA-256 of the state; the verifier is encrypted. */
export interface ConnectSessionsTable {
  id: string;
  provider: string;
  owner_id: string;
  return_to: string;
  code_verifier: string | null;
  created_at: number;
  expires_at: number;
  /** Set by the first callback that presents the state: a state works once. */
  used_at: number | null;
}

export interface ApiKeysTable {
  /** The non-secret part of the key (`sok_<id>_<secret>`). */
  id: string;
  name: string;
  /** SHA-256 (hex) of the whole key. */
  key_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface PortalSessionsTable {
  /** SHA-256 (hex) of the link's token. */
  id: string;
  owner_id: string;
  created_at: number;
  expires_at: number;
}

/**
 * One outgoing notification (issue 10): written in the commit of its ledger event, keyed by that
 * event's id, delivered by whichever process claims it first.
 */
export interface NotificationOutboxTable {
  /** The ledger event's id: the notification's `id` and `Social-OAuth-Event-Id`, stable across retries. */
  event_id: string;
  type: string;
  account_id: string;
  owner_id: string;
  provider: string;
  external_account_id: string;
  display_name: string | null;
  /** The account's status in the commit that wrote the event. */
  account_status: string;
  reason: string | null;
  provider_error_code: string | null;
  /** `account.expiring` only: when the grant dies (epoch ms). */
  expires_at: number | null;
  created_at: number;
  state: Generated<string>;
  attempts: Generated<number>;
  /** When to try next (epoch ms); a claim moves it forward by the claim's length. */
  next_attempt_at: number;
  claimed_by: string | null;
  delivered_at: number | null;
  /** Why the last attempt failed (status code or error name; never the receiver's body). */
  last_error: string | null;
}

/**
 * A publication (issue 13): one video on its way to one account's platform. `resumable_state` and
 * `source_url` are ciphertexts of the token keyring bound to the row (a session URI or an upload URL
 * is a capability, and a caller's URL may be a signed one).
 */
export interface PublicationsTable {
  id: string;
  account_id: string;
  provider: string;
  status: string;
  title: string;
  /** JSON: {description, privacy, mode, options, contentType}. */
  request_metadata: string;
  /** A file under MEDIA_DIR (or the library caller's own file), or null with a source URL. */
  media_path: string | null;
  /** Whether we delete media_path when the publication ends (we received it; not a caller's file). */
  media_owned: number;
  source_url: string | null;
  total_bytes: number | null;
  bytes_sent: number;
  resumable_state: string | null;
  platform_post_id: string | null;
  platform_ref: string | null;
  url: string | null;
  error_code: string | null;
  error_message: string | null;
  retry_at: number | null;
  idempotency_key: string | null;
  /** Failed tries so far (transient errors), for the backoff and the give-up. */
  attempts: number;
  /** When a worker should next take it (queued now, a poll of processing, a retry after backoff). */
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  /** SHA-256 (hex) of the token of the media link served for the platform to fetch (Instagram). */
  media_link_hash: string | null;
  /** The same token sealed with the keyring: a resumed publication hands the platform the same URL. */
  media_link_token: string | null;
  media_link_expires_at: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface Database {
  social_accounts: SocialAccountsTable;
  oauth_events: OAuthEventsTable;
  connect_sessions: ConnectSessionsTable;
  api_keys: ApiKeysTable;
  portal_sessions: PortalSessionsTable;
  notification_outbox: NotificationOutboxTable;
  publications: PublicationsTable;
}
