import type { ProviderName } from './providerName.js';

export type PublicationStatus =
  | 'queued'
  | 'uploading'
  | 'processing'
  | 'published'
  | 'sent_to_inbox'
  | 'failed'
  | 'needs_reauth';

/** The platform's resumable state: plain JSON, stored encrypted (it is a capability). */
export type ResumableState = Readonly<Record<string, unknown>>;

export const PUBLICATION_STATUSES = [
  'queued',
  'uploading',
  'processing',
  'published',
  'sent_to_inbox',
  'failed',
  'needs_reauth',
] as const satisfies readonly PublicationStatus[];

/** Statuses a publication never leaves: its media can go, and no worker takes it again. */
export const FINAL_STATUSES: readonly PublicationStatus[] = [
  'published',
  'sent_to_inbox',
  'failed',
  'needs_reauth',
];

/** Statuses a worker takes: not started, interrupted mid-upload, or waiting for the platform. */
export const WORKABLE_STATUSES: readonly PublicationStatus[] = ['queued', 'uploading', 'processing'];

export function isFinalStatus(status: PublicationStatus): boolean {
  return FINAL_STATUSES.includes(status);
}

export interface PublicationError {
  /** The platform's code (quotaExceeded, spam_risk_too_many_posts, …) or ours (media_missing, …). */
  code: string;
  message: string;
  /** When trying again (as a new publication) can succeed, e.g. YouTube's quota at midnight Pacific. */
  retryAt: number | null;
}

/** What the caller asked for, as stored (no secret in it). */
export interface PublicationRequest {
  title: string;
  description: string | null;
  privacy: string | null;
  mode: 'direct' | 'inbox' | null;
  options: Record<string, unknown>;
  contentType: string;
}

/** A publication as the service sees it: secrets decrypted, times in epoch ms. */
export interface Publication {
  id: string;
  accountId: string;
  provider: ProviderName;
  status: PublicationStatus;
  request: PublicationRequest;
  mediaPath: string | null;
  /** We received the file (MEDIA_DIR) and delete it when the publication ends. */
  mediaOwned: boolean;
  sourceUrl: string | null;
  totalBytes: number | null;
  bytesSent: number;
  resumableState: ResumableState | null;
  platformPostId: string | null;
  platformRef: string | null;
  url: string | null;
  error: PublicationError | null;
  idempotencyKey: string | null;
  attempts: number;
  nextAttemptAt: number | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

/** What the library and the HTTP API hand back about a publication. */
export interface PublicationSummary {
  id: string;
  status: PublicationStatus;
  platformPostId: string | null;
  platformRef: string | null;
  url: string | null;
  error: PublicationError | null;
}

export function summarize(publication: Publication): PublicationSummary {
  return {
    id: publication.id,
    status: publication.status,
    platformPostId: publication.platformPostId,
    platformRef: publication.platformRef,
    url: publication.url,
    error: publication.error,
  };
}
