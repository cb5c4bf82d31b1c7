import type { Readable } from 'node:stream';
import { hasUsableAccessToken, type SocialAccount } from '../../domain/account.js';
import type { Clock } from '../../domain/clock.js';
import { RateLimited, ReauthorizationRequired, TransientProviderError } from '../../domain/errors.js';
import type { OAuthEventType } from '../../domain/ledger.js';
import type { Logger } from '../../domain/logger.js';
import type { Publication, PublicationStatus } from '../../domain/publication.js';
import type { OAuthRefreshResult } from '../../domain/token.js';
import type { PublicationProgress, PublishIO, ResumableState } from '../../publishing/platformPublisher.js';
import type { AccountRepository } from '../../store/accountRepository.js';
import type { PublicationRepository } from '../../store/publicationRepository.js';
import type { TokenService } from '../tokenService.js';
import { MediaMissing, openFileRange, openSourceRange } from './media.js';

/** Another worker holds the publication now (ours lapsed): stop without touching it. */
export class LeaseLost extends Error {
  readonly code = 'lease_lost' as const;
  constructor(publicationId: string) {
    super(`The lease on publication ${publicationId} was taken over`);
    this.name = 'LeaseLost';
  }
}

export interface PublishIODeps {
  tokens: TokenService;
  accounts: AccountRepository;
  publications: PublicationRepository;
  clock: Clock;
  /** This worker's lease owner id: every write is fenced by it. */
  owner: string;
  /** Called when a fenced write finds the lease gone: the run's signal aborts. */
  onLeaseLost: () => void;
  onProgress?: (bytesSent: number) => void;
  /** Kills the media link (Instagram fetched the video). */
  releaseMedia: () => Promise<void>;
  logger: Logger;
}

/** bytes_sent is written for readers at most this often; the platform's offset is what counts. */
const PROGRESS_WRITE_INTERVAL_MS = 1000;

/**
 * The service's side of the PlatformPublisher contract for one leased publication: tokens through
 * the exactly-once path, the media, and durable state fenced by the lease.
 */
export class ServicePublishIO implements PublishIO {
  /** The account version the last token handed out came from (for the forced refresh and the flag). */
  tokenVersion: number | null = null;
  private lastToken: string | null = null;
  private status: PublicationStatus;
  private lastProgressWrite = 0;

  constructor(
    private readonly publication: Publication,
    private readonly deps: PublishIODeps,
    readonly signal: AbortSignal,
  ) {
    this.status = publication.status;
  }

  get currentStatus(): PublicationStatus {
    return this.status;
  }

  async accessToken(): Promise<string> {
    const { account, result } = await this.deps.tokens.ensureValidAccessToken(this.publication.accountId);
    return this.handOut(account, result);
  }

  async refreshAfterAuthFailure(): Promise<string> {
    const refused = this.lastToken;
    const current = await this.deps.accounts.findById(this.publication.accountId);
    // Someone (another publication, the refresher) renewed it since we read it: that is the refresh.
    if (
      current !== null &&
      refused !== null &&
      current.accessToken !== refused &&
      hasUsableAccessToken(current, this.deps.clock.now())
    ) {
      return this.handOut(current, null);
    }
    const { account, result } = await this.deps.tokens.refreshOAuthToken(this.publication.accountId, {
      expectedVersion: current?.version ?? this.tokenVersion ?? undefined,
    });
    if (result !== null && !result.success) throw refreshError(account, result);
    return this.handOut(account, result);
  }

  openMedia(start: number, end: number): Readable {
    const { mediaPath, sourceUrl } = this.publication;
    if (mediaPath !== null) return openFileRange(mediaPath, start, end);
    if (sourceUrl !== null) return openSourceRange(sourceUrl, start, end, this.signal);
    throw new MediaMissing('The publication has neither a file nor a source URL');
  }

  async saveState(state: ResumableState, progress: PublicationProgress = {}): Promise<void> {
    const { status, ...rest } = progress;
    const changes = status !== undefined && status !== this.status;
    const saved = await this.deps.publications.saveProgress(
      this.publication,
      this.deps.owner,
      this.deps.clock.now(),
      { state, ...rest, ...(changes ? { status } : {}) },
      changes
        ? { type: `publication_${status}` as OAuthEventType, detail: { bytesSent: progress.bytesSent } }
        : null,
    );
    if (!saved) {
      this.deps.onLeaseLost();
      throw new LeaseLost(this.publication.id);
    }
    if (changes) this.status = status;
    if (progress.bytesSent !== undefined) this.deps.onProgress?.(progress.bytesSent);
  }

  onProgress(bytesSent: number): void {
    this.deps.onProgress?.(bytesSent);
    const now = this.deps.clock.now();
    if (now - this.lastProgressWrite < PROGRESS_WRITE_INTERVAL_MS) return;
    this.lastProgressWrite = now;
    void this.deps.publications
      .recordBytesSent(this.publication.id, this.deps.owner, bytesSent, now)
      .catch(() => {});
  }

  releaseMedia(): Promise<void> {
    return this.deps.releaseMedia();
  }

  warn(message: string, detail: Readonly<Record<string, unknown>> = {}): void {
    this.deps.logger.warn(
      { ...detail, publicationId: this.publication.id, provider: this.publication.provider },
      message,
    );
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) return reject(this.signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(this.signal.reason);
      };
      const timer = setTimeout(() => {
        this.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  now(): number {
    return this.deps.clock.now();
  }

  /** Marks the status the run has moved to without a client save (the first pickup). */
  noteStatus(status: PublicationStatus): void {
    this.status = status;
  }

  private handOut(account: SocialAccount, result: OAuthRefreshResult | null): string {
    if (!hasUsableAccessToken(account, this.deps.clock.now())) {
      throw refreshError(account, result);
    }
    this.lastToken = account.accessToken!;
    this.tokenVersion = account.version;
    return account.accessToken!;
  }
}

/** Why no token could be had, as the contract's errors: dead grant, or try later. */
function refreshError(account: SocialAccount, result: OAuthRefreshResult | null): Error {
  const details = {
    provider: account.provider,
    providerErrorCode: result?.providerErrorCode ?? null,
    providerErrorDescription: result?.reason ?? null,
  };
  const reason = result?.reason ?? (account.status === 'active' ? 'token_expired' : 'needs_reauth');
  if (
    account.status !== 'active' ||
    ['needs_reauth', 'no_refresh_token', 'account_not_active'].includes(reason)
  ) {
    return new ReauthorizationRequired(`The account needs re-authorization (${reason})`, details);
  }
  if (reason === 'rate_limited') {
    const retryAfterMs = result?.retryAt ? Math.max(0, result.retryAt - Date.now()) : null;
    return new RateLimited('The platform rate-limited the token refresh', { ...details, retryAfterMs });
  }
  return new TransientProviderError(`No valid access token could be had (${reason})`, details);
}
