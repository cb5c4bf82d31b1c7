import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { PublishingSettings } from '../../config.js';
import type { Clock } from '../../domain/clock.js';
import { AccountNotFound } from '../../domain/errors.js';
import type { Logger } from '../../domain/logger.js';
import type { ProviderName } from '../../domain/providerName.js';
import {
  isFinalStatus,
  type Publication,
  type PublicationRequest,
  type PublicationStatus,
} from '../../domain/publication.js';
import type { PlatformPublisher } from '../../publishing/platformPublisher.js';
import type { AccountRepository } from '../../store/accountRepository.js';
import type { PublicationRepository } from '../../store/publicationRepository.js';
import { ServiceError } from '../serviceError.js';
import { fileSize, type MediaStore, MediaTooLarge, probeSourceUrl } from './media.js';
import type { PublicationRunner, RunOptions } from './publicationRunner.js';

/** Where the video comes from. */
export type MediaInput =
  /** A file already on disk: one we received into MEDIA_DIR (`owned`, deleted at the end) or the caller's. */
  | { kind: 'file'; path: string; owned: boolean }
  /** A stream of known size (library): spooled into MEDIA_DIR first, so a crash can resume it. */
  | { kind: 'stream'; stream: Readable; size: number }
  /** A URL the service streams from (or, on Instagram, hands to the platform). */
  | { kind: 'source_url'; url: string };

export interface CreatePublicationInput {
  /** Chosen up front when the file was received under this id. */
  id?: string;
  accountId: string;
  idempotencyKey?: string | null;
  title: string;
  description?: string | null;
  privacy?: string | null;
  mode?: 'direct' | 'inbox' | null;
  options?: Record<string, unknown>;
  contentType?: string | null;
  media: MediaInput;
}

export interface CreateOutcome {
  publication: Publication;
  /** false: the idempotency key named an existing publication, which is returned instead. */
  created: boolean;
}

export interface PublicationServiceDeps {
  publications: PublicationRepository;
  accounts: AccountRepository;
  runner: PublicationRunner;
  media: MediaStore;
  publishers: Partial<Record<ProviderName, PlatformPublisher>>;
  clock: Clock;
  logger: Logger;
  settings: PublishingSettings;
  /** Names this process in publication leases. */
  instanceId: string;
}

export interface DriveOptions extends RunOptions {
  /** Keep going through `processing` until the platform has finished with it (CLI --wait). */
  untilSettled?: boolean;
}

const TITLE_MAX = 5_000;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Publications: created once per idempotency key, stored with their media, and driven to the
 * platform by a worker (any process) or by the caller itself (library, CLI).
 */
export class PublicationService {
  private readonly wakeListeners = new Set<() => void>();

  constructor(private readonly deps: PublicationServiceDeps) {}

  get settings(): PublishingSettings {
    return this.deps.settings;
  }

  get media(): MediaStore {
    return this.deps.media;
  }

  /** Checks what can be checked before any byte is received: the account, the key, the platform. */
  async precheck(accountId: string, idempotencyKey: string | null): Promise<Publication | null> {
    if (idempotencyKey !== null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ServiceError(
        'invalid_request',
        'Idempotency-Key must be 1 to 200 printable ASCII characters',
      );
    }
    const account = await this.deps.accounts.findById(accountId);
    if (!account) throw new AccountNotFound(accountId);
    if (idempotencyKey !== null) {
      const existing = await this.deps.publications.findByIdempotencyKey(accountId, idempotencyKey);
      if (existing) return existing;
    }
    if (account.status === 'needs_reauth') {
      throw new ServiceError(
        'account_needs_reauth',
        'The account must be re-authorized by its user before it can publish',
      );
    }
    if (account.status === 'revoked') throw new ServiceError('account_revoked', 'The account was revoked');
    if (!this.deps.publishers[account.provider]) {
      throw new ServiceError(
        'provider_not_configured',
        `Publishing to ${account.provider} is not available in this service`,
      );
    }
    return null;
  }

  async create(input: CreatePublicationInput): Promise<CreateOutcome> {
    const idempotencyKey = input.idempotencyKey ?? null;
    const id = input.id ?? `pub_${randomUUID()}`;
    let media = input.media;
    try {
      const existing = await this.precheck(input.accountId, idempotencyKey);
      if (existing) {
        await this.discardReceived(media);
        return { publication: existing, created: false };
      }
      const title = input.title.trim();
      if (title === '' || title.length > TITLE_MAX) {
        throw new ServiceError('invalid_request', `title must be 1 to ${TITLE_MAX} characters`);
      }
      const account = (await this.deps.accounts.findById(input.accountId))!;
      let totalBytes: number | null;
      let sourceUrl: string | null = null;
      let mediaPath: string | null = null;
      let contentType = input.contentType ?? null;
      if (media.kind === 'stream') {
        if (media.size > this.deps.settings.maxBytes) throw new MediaTooLarge(this.deps.settings.maxBytes);
        const received = await this.deps.media.receive(id, media.stream, this.deps.settings.maxBytes);
        if (received !== media.size) {
          await this.deps.media.discard(this.deps.media.pathOf(id));
          throw new ServiceError(
            'invalid_request',
            `The stream gave ${received} bytes, not the ${media.size} announced`,
          );
        }
        media = { kind: 'file', path: this.deps.media.pathOf(id), owned: true };
      }
      if (media.kind === 'file') {
        mediaPath = media.path;
        totalBytes = await fileSize(media.path);
        if (totalBytes === 0) throw new ServiceError('invalid_request', 'The video is empty');
      } else {
        sourceUrl = checkSourceUrl(media.url);
        const probed = await probeSourceUrl(sourceUrl);
        totalBytes = probed.size;
        contentType ??= probed.contentType;
        if (totalBytes === null && !this.fetchesFromUrl(account.provider)) {
          throw new ServiceError(
            'invalid_request',
            'source_url must tell its size (Content-Length or a Range answer)',
          );
        }
      }
      if (totalBytes !== null && totalBytes > this.deps.settings.maxBytes) {
        throw new MediaTooLarge(this.deps.settings.maxBytes);
      }
      const request: PublicationRequest = {
        title,
        description: input.description?.trim() || null,
        privacy: input.privacy ?? null,
        mode: input.mode ?? null,
        options: input.options ?? {},
        contentType: contentType ?? 'video/mp4',
      };
      const outcome = await this.deps.publications.insert(
        {
          id,
          accountId: account.id,
          provider: account.provider,
          request,
          mediaPath,
          mediaOwned: media.kind === 'file' && media.owned,
          sourceUrl,
          totalBytes,
          idempotencyKey,
        },
        this.deps.clock.now(),
      );
      if (outcome.kind === 'duplicate') {
        // A concurrent duplicate won the race for the key: ours is dropped, with its file.
        await this.discardReceived(media);
        return { publication: outcome.publication, created: false };
      }
      this.wake();
      return { publication: outcome.publication, created: true };
    } catch (error) {
      await this.discardReceived(media);
      throw error;
    }
  }

  get(id: string): Promise<Publication | null> {
    return this.deps.publications.findById(id);
  }

  list(filter: {
    accountId?: string;
    status?: PublicationStatus;
    before?: { createdAt: number; id: string };
    limit: number;
  }): Promise<Publication[]> {
    return this.deps.publications.list(filter);
  }

  /**
   * Runs the publication in this process until the platform has it (or, with `untilSettled`, has
   * finished processing it), or it ended. Another worker holding it is waited for, never raced.
   */
  async drive(id: string, options: DriveOptions = {}): Promise<Publication> {
    const { publications, clock, runner } = this.deps;
    let ranOnce = false;
    for (;;) {
      const publication = await publications.findById(id);
      if (!publication) throw new ServiceError('invalid_request', `No publication ${id}`);
      if (isFinalStatus(publication.status) || options.signal?.aborted) return publication;
      if (publication.status === 'processing' && ranOnce && !options.untilSettled) return publication;
      const now = clock.now();
      const due = publication.nextAttemptAt ?? now;
      const leased = publication.leaseUntil !== null && publication.leaseUntil > now;
      if (due > now || leased) {
        await abortableSleep(Math.min(Math.max(due - now, leased ? 250 : 0), 5_000), options.signal);
        continue;
      }
      const owner = `${this.deps.instanceId}/${randomUUID().slice(0, 8)}`;
      const claimed = await publications.claimById(id, owner, now, runner.leaseMs);
      if (!claimed) continue;
      await runner.run(claimed, owner, options);
      ranOnce = true;
    }
  }

  /** Told when a publication is created, so a worker in this process takes it without waiting. */
  onWake(listener: () => void): () => void {
    this.wakeListeners.add(listener);
    return () => this.wakeListeners.delete(listener);
  }

  private wake(): void {
    for (const listener of this.wakeListeners) listener();
  }

  private fetchesFromUrl(provider: ProviderName): boolean {
    return this.deps.runner.fetchesFromUrl(provider);
  }

  private async discardReceived(media: MediaInput): Promise<void> {
    if (media.kind === 'file' && media.owned) await this.deps.media.discard(media.path).catch(() => {});
  }
}

function checkSourceUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ServiceError('invalid_request', 'source_url is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ServiceError('invalid_request', 'source_url must be http(s)');
  }
  return url.toString();
}
