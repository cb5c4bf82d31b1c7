import type { Readable } from 'node:stream';
import { hasUsableAccessToken, type SocialAccount } from '../../domain/account.js';
import { ReauthorizationRequired, TransientProviderError } from '../../domain/errors.js';
import { type PublicationSummary, summarize } from '../../domain/publication.js';
import type { PlatformIdentity, PlatformPublisher } from '../../publishing/platformPublisher.js';
import type { TokenService } from '../tokenService.js';
import type { MediaInput, PublicationService } from './publicationService.js';

/** The video and what to say about it. Exactly one of `file`, `stream` (with `size`) or `sourceUrl`. */
export interface UploadVideoInput {
  file?: string;
  stream?: Readable;
  size?: number;
  sourceUrl?: string;
  title: string;
  description?: string | null;
  /** TikTok privacy_level, YouTube privacyStatus; the platform's default when absent. */
  privacy?: string | null;
  /** TikTok: direct post or the user's inbox. */
  mode?: 'direct' | 'inbox' | null;
  contentType?: string | null;
  /** Other platform options (TikTok disable_comment, YouTube categoryId, …). */
  options?: Record<string, unknown>;
}

export interface UploadVideoOptions {
  onProgress?: (bytesSent: number, totalBytes: number | null) => void;
  /** Stops this call; the publication stays resumable and a worker carries it on. */
  signal?: AbortSignal;
  /** A second call with the same key returns the first publication instead of posting again. */
  idempotencyKey?: string;
  /** Wait through `processing` until the platform has finished (YouTube processing). */
  waitForProcessing?: boolean;
}

/** The seed's provider client: a valid token first, then authenticate() and uploadVideo(). */
export interface PublishingClient {
  readonly accountId: string;
  readonly provider: SocialAccount['provider'];
  authenticate(): Promise<PlatformIdentity>;
  uploadVideo(input: UploadVideoInput, options?: UploadVideoOptions): Promise<PublicationSummary>;
}

export interface PublishingClientDeps {
  tokens: TokenService;
  publications: PublicationService;
  publisher: PlatformPublisher;
  now: () => number;
}

/**
 * Builds the client after the exactly-once ensure path has produced a valid token (the seed's
 * get_provider_client_for_account). A dead grant is ReauthorizationRequired here, before anything.
 */
export async function createPublishingClient(
  accountId: string,
  deps: Omit<PublishingClientDeps, 'publisher'> & {
    publisherFor: (account: SocialAccount) => PlatformPublisher;
  },
): Promise<PublishingClient> {
  const { account, result } = await deps.tokens.ensureValidAccessToken(accountId);
  if (!hasUsableAccessToken(account, deps.now())) {
    const details = { provider: account.provider, providerErrorCode: result?.providerErrorCode ?? null };
    if (account.status !== 'active' || result?.reason === 'needs_reauth') {
      throw new ReauthorizationRequired(`Account ${accountId} needs re-authorization`, details);
    }
    throw new TransientProviderError(
      `No valid access token for ${accountId} (${result?.reason ?? 'expired'})`,
      details,
    );
  }
  const publisher = deps.publisherFor(account);
  return {
    accountId,
    provider: account.provider,
    async authenticate() {
      const { account: current } = await deps.tokens.ensureValidAccessToken(accountId);
      if (!hasUsableAccessToken(current, deps.now())) {
        throw new ReauthorizationRequired(`Account ${accountId} needs re-authorization`, {
          provider: current.provider,
        });
      }
      return publisher.authenticate(current.accessToken!, current.scopes);
    },
    async uploadVideo(input, options = {}) {
      const { publication } = await deps.publications.create({
        accountId,
        idempotencyKey: options.idempotencyKey ?? null,
        title: input.title,
        description: input.description ?? null,
        privacy: input.privacy ?? null,
        mode: input.mode ?? null,
        options: input.options ?? {},
        contentType: input.contentType ?? null,
        media: mediaOf(input),
      });
      const driven = await deps.publications.drive(publication.id, {
        onProgress: options.onProgress,
        signal: options.signal,
        untilSettled: options.waitForProcessing === true,
      });
      return summarize(driven);
    },
  };
}

function mediaOf(input: UploadVideoInput): MediaInput {
  const given = [input.file !== undefined, input.stream !== undefined, input.sourceUrl !== undefined].filter(
    Boolean,
  );
  if (given.length !== 1)
    throw new TypeError('uploadVideo takes exactly one of file, stream (with size) or sourceUrl');
  if (input.file !== undefined) return { kind: 'file', path: input.file, owned: false };
  if (input.stream !== undefined) {
    if (input.size === undefined || !Number.isInteger(input.size) || input.size < 0) {
      throw new TypeError('uploadVideo: a stream needs its size in bytes');
    }
    return { kind: 'stream', stream: input.stream, size: input.size };
  }
  return { kind: 'source_url', url: input.sourceUrl! };
}
