import type { OAuthEventType } from './ledger.js';

/** The account changes the publishing app must hear about: each asks its user to reconnect. */
export const NOTIFICATION_TYPES = ['account.needs_reauth', 'account.revoked', 'account.expiring'] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** Which ledger events become notifications: the outbox row is written in the event's commit. */
export const NOTIFIED_EVENT_TYPES: Partial<Record<OAuthEventType, NotificationType>> = {
  needs_reauth: 'account.needs_reauth',
  revoked: 'account.revoked',
  expiring: 'account.expiring',
};

/** The body POSTed to WEBHOOK_URL. Field names are part of the API contract. */
export interface StatusNotification {
  /** The ledger event's id: stable across retries and processes, so receivers can de-duplicate. */
  id: string;
  type: NotificationType;
  created_at: string;
  account: {
    id: string;
    owner_id: string;
    provider: string;
    external_account_id: string;
    display_name: string | null;
    status: string;
  };
  reason: string | null;
  provider_error_code: string | null;
  /** `account.expiring` only: when the grant dies (ISO 8601); null for the other types. */
  expires_at: string | null;
}

/** How one delivery attempt ended. */
export type DeliveryOutcome =
  /** 2xx: done. */
  | 'delivered'
  /** A 4xx other than 408/429: the receiver refused it; retrying will not help. */
  | 'rejected'
  /** 5xx, 408, 429, a network error or a timeout: try again later. */
  | 'retry'
  /** This process is stopping: hand the notification back for the next one. */
  | 'stopped';
