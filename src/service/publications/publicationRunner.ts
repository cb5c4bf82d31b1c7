import type { PublishingSettings } from '../../config.js';
import type { Clock } from '../../domain/clock.js';
import {
  AccountNotFound,
  isRetryable,
  OAuthProviderError,
  ProviderConfigError,
  RateLimited,
  ReauthorizationRequired,
} from '../../domain/errors.js';
import type { OAuthEventType } from '../../domain/ledger.js';
import type { Logger } from '../../domain/logger.js';
import type { ProviderName } from '../../domain/providerName.js';
import { isFinalStatus, type Publication, type PublicationError } from '../../domain/publication.js';
import { nextAttemptDelayMs } from '../../domain/retryPolicy.js';
import { capabilitiesOf } from '../../platforms/capabilities.js';
import type {
  PlatformPublisher,
  PublishOutcome,
  PublishRequest,
} from '../../publishing/platformPublisher.js';
import type { AccountRepository } from '../../store/accountRepository.js';
import { isDatabaseUnavailable } from '../../store/database.js';
import type {
  LeaseEnd,
  PublicationEventInput,
  PublicationRepository,
} from '../../store/publicationRepository.js';
import { describe } from '../refreshOutcomes.js';
import type { TokenService } from '../tokenService.js';
import { MediaMissing, type MediaStore } from './media.js';
import type { MediaLinks } from './mediaLinks.js';
import { LeaseLost, ServicePublishIO } from './publishIO.js';

export interface PublicationRunnerDeps {
  publications: PublicationRepository;
  accounts: AccountRepository;
  tokens: TokenService;
  publishers: Partial<Record<ProviderName, PlatformPublisher>>;
  media: MediaStore;
  mediaLinks: MediaLinks;
  clock: Clock;
  logger: Logger;
  settings: PublishingSettings;
  random?: () => number;
}

export interface RunOptions {
  onProgress?: (bytesSent: number, totalBytes: number | null) => void;
  /** The caller gave up (library, CLI): the publication stays resumable and a worker carries it on. */
  signal?: AbortSignal;
}

/**
 * Runs one publication whose lease this process holds, from where it stands to where the platform
 * leaves it: uploaded and published, waiting in `processing` for the next look, handed back for a
 * retry after a transient failure, or ended (`failed`, `needs_reauth`). The lease is renewed while
 * it runs; if it is lost, the run stops without writing anything.
 */
export class PublicationRunner {
  private readonly random: () => number;

  constructor(private readonly deps: PublicationRunnerDeps) {
    this.random = deps.random ?? Math.random;
  }

  /** Whether the platform takes a public URL instead of bytes (Instagram Login). */
  fetchesFromUrl(provider: ProviderName): boolean {
    return capabilitiesOf(provider).publishesFromPublicUrl === true;
  }

  get leaseMs(): number {
    return this.deps.settings.leaseSeconds * 1000;
  }

  async run(publication: Publication, owner: string, options: RunOptions = {}): Promise<void> {
    const { publications, clock, logger } = this.deps;
    const publisher = this.deps.publishers[publication.provider];
    const leaseLost = new AbortController();
    const signal = options.signal ? AbortSignal.any([leaseLost.signal, options.signal]) : leaseLost.signal;
    // Renewed at a third of the lease: two renewals can fail (a database blip) before it lapses.
    const heartbeat = setInterval(
      () => {
        publications
          .renewLease(publication.id, owner, clock.now(), this.leaseMs)
          .then((held) => {
            if (!held) leaseLost.abort(new LeaseLost(publication.id));
          })
          .catch((error: unknown) =>
            logger.warn(
              { publicationId: publication.id, err: describe(error) },
              'publication lease renewal failed',
            ),
          );
      },
      Math.max(50, this.leaseMs / 3),
    );
    const io = new ServicePublishIO(
      publication,
      {
        tokens: this.deps.tokens,
        accounts: this.deps.accounts,
        publications,
        clock,
        owner,
        onLeaseLost: () => leaseLost.abort(new LeaseLost(publication.id)),
        onProgress: options.onProgress
          ? (bytes) => options.onProgress!(bytes, publication.totalBytes)
          : undefined,
        releaseMedia: () => this.deps.mediaLinks.release(publication.id),
        logger,
      },
      signal,
    );
    let finished = false;
    try {
      if (!publisher) {
        finished = await this.end(publication, owner, io.currentStatus, {
          status: 'failed',
          errorCode: 'provider_not_available',
          message: `Publishing to ${publication.provider} is not available in this service`,
          retryAt: null,
        });
        return;
      }
      if (publication.status === 'processing' && publication.resumableState === null) {
        // Nothing to poll with, and publishing again could post twice: end it, loudly.
        finished = await this.end(publication, owner, io.currentStatus, {
          status: 'failed',
          errorCode: 'missing_state',
          message: 'The publication is processing but its platform state is gone; it was not published again',
          retryAt: null,
        });
        return;
      }
      if (publication.status === 'queued') {
        if (!(await this.moveToUploading(publication, owner))) return;
        io.noteStatus('uploading');
      }
      const outcome =
        publication.status === 'processing' && publication.resumableState !== null
          ? await publisher.checkProcessing(publication.resumableState, io)
          : await publisher.publish(await this.requestOf(publication), publication.resumableState, io);
      finished = await this.end(publication, owner, io.currentStatus, outcome);
    } catch (error) {
      finished = await this.fail(publication, owner, io, error, leaseLost.signal.aborted, options.signal);
    } finally {
      clearInterval(heartbeat);
    }
    if (finished && publication.mediaPath !== null && publication.mediaOwned) {
      await this.deps.media.discard(publication.mediaPath).catch(() => {});
    }
  }

  /** What the platform client is asked to publish; Instagram gets a link to the file. */
  private async requestOf(publication: Publication): Promise<PublishRequest> {
    const { request } = publication;
    let mediaUrl: string | null = null;
    if (this.fetchesFromUrl(publication.provider)) {
      mediaUrl = publication.sourceUrl ?? (await this.deps.mediaLinks.linkFor(publication));
    }
    return {
      title: request.title,
      description: request.description,
      privacy: request.privacy,
      mode: request.mode,
      options: request.options,
      totalBytes: publication.totalBytes ?? 0,
      contentType: request.contentType,
      mediaUrl,
    };
  }

  private moveToUploading(publication: Publication, owner: string): Promise<boolean> {
    return this.deps.publications.saveProgress(
      publication,
      owner,
      this.deps.clock.now(),
      { status: 'uploading' },
      { type: 'publication_uploading' },
    );
  }

  /** Writes what the platform client came back with. Returns whether the publication ended. */
  private async end(
    publication: Publication,
    owner: string,
    statusBefore: string,
    outcome: PublishOutcome,
  ): Promise<boolean> {
    const now = this.deps.clock.now();
    let end: LeaseEnd;
    let event: PublicationEventInput | null;
    if (outcome.status === 'failed') {
      const error: PublicationError = {
        code: outcome.errorCode,
        message: outcome.message,
        retryAt: outcome.retryAt,
      };
      end = { status: 'failed', finished: true, nextAttemptAt: null, error };
      event = {
        type: 'publication_failed',
        reason: outcome.errorCode,
        providerErrorCode: outcome.errorCode,
        detail: { message: outcome.message, retryAt: outcome.retryAt },
      };
    } else {
      const finished = isFinalStatus(outcome.status);
      end = {
        status: outcome.status,
        finished,
        nextAttemptAt: finished ? null : now + this.deps.settings.pollIntervalMs,
        platformPostId: outcome.platformPostId,
        platformRef: outcome.platformRef,
        url: outcome.url,
        error: null,
        ...(publication.totalBytes !== null && statusBefore !== 'processing'
          ? { bytesSent: publication.totalBytes }
          : {}),
      };
      event =
        outcome.status === statusBefore
          ? null
          : {
              type: `publication_${outcome.status}` as OAuthEventType,
              detail: { platformPostId: outcome.platformPostId, platformRef: outcome.platformRef },
            };
    }
    const written = await this.deps.publications.endLease(publication, owner, now, end, event);
    return written && end.finished;
  }

  /** An error escaped the platform client: retry later, or end the publication. */
  private async fail(
    publication: Publication,
    owner: string,
    io: ServicePublishIO,
    error: unknown,
    leaseLost: boolean,
    callerSignal: AbortSignal | undefined,
  ): Promise<boolean> {
    const { publications, clock, logger, settings } = this.deps;
    const now = clock.now();
    if (leaseLost || error instanceof LeaseLost) {
      logger.warn({ publicationId: publication.id }, 'publication taken over by another worker; stopped');
      return false;
    }
    const status = io.currentStatus;
    if (callerSignal?.aborted) {
      // Handed back as it stands: the platform's state is saved, a worker resumes it.
      await publications.endLease(
        publication,
        owner,
        now,
        { status, finished: false, nextAttemptAt: now },
        null,
      );
      return false;
    }
    if (error instanceof ReauthorizationRequired) {
      await this.flagAccount(publication, io, error);
      const ended = await publications.endLease(
        publication,
        owner,
        now,
        {
          status: 'needs_reauth',
          finished: true,
          nextAttemptAt: null,
          error: { code: 'needs_reauth', message: error.message, retryAt: null },
        },
        {
          type: 'publication_needs_reauth',
          reason: 'needs_reauth',
          providerErrorCode: error.providerErrorCode,
          detail: { httpStatus: error.httpStatus },
        },
      );
      return ended;
    }
    const finalFailure = (code: string, message: string, providerErrorCode: string | null = null) =>
      publications.endLease(
        publication,
        owner,
        now,
        { status: 'failed', finished: true, nextAttemptAt: null, error: { code, message, retryAt: null } },
        { type: 'publication_failed', reason: code, providerErrorCode, detail: { message } },
      );
    if (error instanceof MediaMissing) return finalFailure('media_missing', error.message);
    if (error instanceof AccountNotFound) return finalFailure('account_not_found', 'The account was deleted');
    if (error instanceof ProviderConfigError) {
      return finalFailure('provider_config_error', error.message, error.providerErrorCode);
    }
    if (isDatabaseUnavailable(error)) {
      // Nothing can be written: the lease lapses and a worker takes the publication again.
      logger.error(
        { publicationId: publication.id, err: describe(error) },
        'publication stopped: database unavailable',
      );
      return false;
    }
    const attempts = publication.attempts + 1;
    const retryable = isRetryable(error);
    if (!retryable) {
      logger.error({ publicationId: publication.id, err: describe(error) }, 'publication run failed');
    }
    const code = error instanceof OAuthProviderError ? error.code : 'internal_error';
    const message = error instanceof OAuthProviderError ? error.message : 'Internal error while publishing';
    if (attempts >= settings.maxAttempts) {
      return finalFailure(
        code,
        `${message} (after ${attempts} tries)`,
        (error as OAuthProviderError).providerErrorCode ?? null,
      );
    }
    const retryAfterMs = error instanceof RateLimited ? error.retryAfterMs : null;
    const delay = nextAttemptDelayMs(
      attempts,
      retryAfterMs,
      { baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs },
      this.random,
    );
    logger.info(
      { publicationId: publication.id, attempts, delayMs: delay, err: describe(error) },
      'publication will be retried',
    );
    await publications.endLease(
      publication,
      owner,
      now,
      { status, finished: false, nextAttemptAt: now + Math.max(delay, settings.retryBaseMs / 2), attempts },
      null,
    );
    return false;
  }

  /** A second refusal after the forced refresh: the account is flagged as the refresher flags it. */
  private async flagAccount(
    publication: Publication,
    io: ServicePublishIO,
    error: ReauthorizationRequired,
  ): Promise<void> {
    if (io.tokenVersion === null) return;
    try {
      await this.deps.tokens.markRefusedAfterRefresh(publication.accountId, io.tokenVersion, error);
    } catch (failure) {
      this.deps.logger.error(
        { accountId: publication.accountId, err: describe(failure) },
        'could not flag the account after a refused publishing request',
      );
    }
  }
}
