import type { Readable } from 'node:stream';
import type { ProviderName } from '../domain/providerName.js';
import type { PublicationStatus, ResumableState } from '../domain/publication.js';

// Domain types the contract speaks in, named here too for the platforms' clients.
export type { PublicationStatus, ResumableState };

/**
 * The contract between the publication service (durable state, retries, HTTP, CLI) and each
 * platform's publishing client (`src/platforms/<name>/publishing.ts`). The service owns the
 * database and the token; the platform client owns the platform's wire protocol.
 *
 * Exactly once: a client never starts a second post for one publication. Whatever the platform
 * accepted (an init, a session URI, a container id) is handed to `io.saveState` and is durable
 * before the client sends anything that depends on it; a client called again with that state
 * resumes or polls, never inits again.
 */

export interface PublishRequest {
  title: string;
  description: string | null;
  /** Platform privacy value (TikTok privacy_level, YouTube privacyStatus); null = the default. */
  privacy: string | null;
  /** TikTok: direct post or the user's inbox; ignored elsewhere. */
  mode: 'direct' | 'inbox' | null;
  /** Other platform options (TikTok disable_comment, YouTube categoryId, …), validated by the client. */
  options: Readonly<Record<string, unknown>>;
  totalBytes: number;
  contentType: string;
  /** A public URL the platform fetches the media from (Instagram); null where bytes are uploaded. */
  mediaUrl: string | null;
}

export interface PublicationProgress {
  status?: PublicationStatus;
  bytesSent?: number;
  /** YouTube video id, Instagram media id, TikTok public post id. */
  platformPostId?: string | null;
  /** TikTok publish_id, Instagram container id: the platform's handle while there is no post id. */
  platformRef?: string | null;
  /** The post's public page: YouTube's watch URL, Instagram's permalink. */
  url?: string | null;
}

export interface PublishIO {
  /** A valid access token, through the exactly-once ensure path. */
  accessToken(): Promise<string>;
  /**
   * After the platform refused our token (401, TikTok access_token_invalid, Instagram 190): one
   * forced refresh through the exactly-once path. Throws ReauthorizationRequired when the
   * account cannot be refreshed. The client retries that one request once; a second refusal is
   * ReauthorizationRequired (the service then ends the publication `needs_reauth`).
   */
  refreshAfterAuthFailure(): Promise<string>;
  /** Bytes [start, end) of the media. */
  openMedia(start: number, end: number): Readable;
  /** Durably store the state (and progress) before going on: resolves after the commit. */
  saveState(state: ResumableState, progress?: PublicationProgress): Promise<void>;
  /** Progress that need not be durable (bytes confirmed by the platform so far). */
  onProgress(bytesSent: number): void;
  /**
   * Optional for clients, always provided by the service: the platform has fetched the media from
   * `request.mediaUrl` (Instagram: the container is FINISHED), so the link we serve can die now.
   */
  releaseMedia?(): Promise<void>;
  /**
   * Optional for clients, always provided by the service (which logs it): something went wrong that
   * does not change the outcome (Instagram: the permalink of a post already published could not be
   * read). `detail` carries no secret.
   */
  warn?(message: string, detail?: Readonly<Record<string, unknown>>): void;
  signal: AbortSignal;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export type PublishOutcome =
  | {
      status: 'published' | 'sent_to_inbox' | 'processing';
      platformPostId: string | null;
      platformRef: string | null;
      url: string | null;
    }
  | {
      status: 'failed';
      /** The platform's error code (quotaExceeded, spam_risk_too_many_posts, …) or ours. */
      errorCode: string;
      message: string;
      /** When trying again can succeed (YouTube quota: midnight Pacific). */
      retryAt: number | null;
    };

/** A final failure with the platform's code (or ours) and no time at which trying again helps. */
export function failed(errorCode: string, message: string): PublishOutcome {
  return { status: 'failed', errorCode, message, retryAt: null };
}

export interface PlatformIdentity {
  provider: ProviderName;
  externalAccountId: string;
  displayName: string | null;
  grantedScopes: string[];
  canPublish: boolean;
  missingScopes: string[];
  /** Why canPublish is false. */
  reason: string | null;
}

export interface PlatformPublisher {
  readonly provider: ProviderName;
  /** Reads the profile with the token; grantedScopes are the account's stored scopes. */
  authenticate(accessToken: string, grantedScopes: readonly string[]): Promise<PlatformIdentity>;
  /**
   * Drives one publication from `state` (null: nothing was sent yet) until the platform has it
   * (`published`, `sent_to_inbox`, or `processing` when the platform still works on it) or it
   * failed for good. Transient errors (5xx, timeouts, resets) are retried inside with backoff,
   * resuming from the offset the platform confirms; they escape only after the retries are spent
   * (TransientProviderError), and the service tries again later with the saved state.
   * Throws ReauthorizationRequired after a second auth refusal.
   */
  publish(request: PublishRequest, state: ResumableState | null, io: PublishIO): Promise<PublishOutcome>;
  /** One look at a publication in `processing` (YouTube processingDetails, TikTok status/fetch, Instagram status_code). */
  checkProcessing(state: ResumableState, io: PublishIO): Promise<PublishOutcome>;
}
