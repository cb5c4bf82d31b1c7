import { z } from 'zod';
import { ReauthorizationRequired, TransientProviderError } from '../../domain/errors.js';
import type {
  PlatformIdentity,
  PlatformPublisher,
  PublishIO,
  PublishOutcome,
  PublishRequest,
  ResumableState,
} from '../../publishing/platformPublisher.js';
import { failed } from '../../publishing/platformPublisher.js';
import {
  backoff,
  callPlatform,
  type ProviderHttpOptions,
  type ProviderSettings,
  type PublishingAnswer,
  type PublishingCall,
  resolveEndpoint,
  retryTransient,
  withTokenRetry,
} from '../publishingHttp.js';
import type { PlatformPublishingSettings } from '../publishingSettings.js';
import { nextPacificMidnight } from './quotaReset.js';

/**
 * YouTube Data API v3 `videos.insert` over the resumable upload protocol
 * (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol), and `videos.list` for
 * processing. Never the `googleapis` client: it uploads with uploadType=multipart, one request
 * that cannot resume.
 *
 * The rules that keep one publication one video:
 * - the session URI is saved (io.saveState) before the first byte is sent;
 * - after any interruption (a reset, a timeout, a 5xx, a crash) the next request to the session is
 *   the probe (an empty PUT with `Content-Range: bytes` star-slash-TOTAL), and the upload resumes at the byte after the Range
 *   YouTube confirms (none = from 0), never at our own count;
 * - a probe answered with the video resource means done: nothing is sent again;
 * - a 404 on the session means it expired: a new session is started only if the last chunk was
 *   never sent (so no video can exist); otherwise the publication fails as unconfirmed.
 */

export const YOUTUBE_INSERT_URL =
  'https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status';
export const YOUTUBE_VIDEOS_URL = 'https://www.googleapis.com/youtube/v3/videos';
export const YOUTUBE_CHANNELS_URL =
  'https://www.googleapis.com/youtube/v3/channels?part=id,snippet&mine=true';

/** videos.insert accepts any of these (videos.insert reference, "Authorization"). */
const UPLOAD_SCOPES = [
  'https://www.googleapis.com/auth/youtube.upload',
  'https://www.googleapis.com/auth/youtube',
  'https://www.googleapis.com/auth/youtube.force-ssl',
];
const PRIVACY = ['private', 'unlisted', 'public'] as const;
/** Sessions started for one publication before giving up (each a 404 on a session that never completed). */
const MAX_SESSIONS = 3;

const stateSchema = z.object({
  sessionUri: z.string().min(1),
  /** Saved before the last chunk leaves: from then on a video may exist, so a 404 is not "start again". */
  finalChunkSent: z.boolean().optional(),
  videoId: z.string().optional(),
});
type YouTubeState = z.infer<typeof stateSchema>;

const videoSchema = z.object({ id: z.string().min(1) });
const errorSchema = z.object({
  error: z.object({
    code: z.number().optional(),
    message: z.string().optional(),
    errors: z.array(z.object({ reason: z.string().optional(), domain: z.string().optional() })).optional(),
  }),
});
const channelsSchema = z.object({
  items: z.array(
    z.object({ id: z.string(), snippet: z.object({ title: z.string().optional() }).optional() }),
  ),
});
const videoListSchema = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      status: z
        .object({
          uploadStatus: z.string().optional(),
          failureReason: z.string().optional(),
          rejectionReason: z.string().optional(),
        })
        .optional(),
      processingDetails: z
        .object({ processingStatus: z.string().optional(), processingFailureReason: z.string().optional() })
        .optional(),
    }),
  ),
});

const optionsSchema = z
  .object({
    categoryId: z.string().regex(/^\d+$/).optional(),
    tags: z.array(z.string()).optional(),
    madeForKids: z.boolean().optional(),
  })
  .passthrough();

/** What an answer to the session says, once auth refusals were dealt with. */
type SessionAnswer =
  | { kind: 'done'; videoId: string }
  | { kind: 'incomplete'; confirmed: number }
  | { kind: 'expired' }
  | { kind: 'transient'; retryAfterMs: number | null }
  | { kind: 'failed'; outcome: PublishOutcome };

export class YouTubePublisher implements PlatformPublisher {
  readonly provider = 'youtube' as const;

  constructor(
    private readonly settings: Pick<ProviderSettings, 'baseUrl'>,
    private readonly http: ProviderHttpOptions,
    private readonly config: PlatformPublishingSettings,
  ) {}

  async authenticate(accessToken: string, grantedScopes: readonly string[]): Promise<PlatformIdentity> {
    const answer = await this.call({
      method: 'GET',
      url: resolveEndpoint(this.settings.baseUrl, YOUTUBE_CHANNELS_URL),
      bearerToken: accessToken,
      label: 'youtube channels.list',
    });
    if (answer.status === 401) {
      throw new ReauthorizationRequired('YouTube refused the access token', {
        provider: this.provider,
        providerErrorCode: 'authError',
        httpStatus: 401,
      });
    }
    if (answer.status !== 200) throw this.unexpected(answer, 'youtube channels.list');
    const channel = channelsSchema.parse(answer.json).items[0];
    const canPublish = grantedScopes.some((scope) => UPLOAD_SCOPES.includes(scope));
    return {
      provider: this.provider,
      externalAccountId: channel?.id ?? '',
      displayName: channel?.snippet?.title ?? null,
      grantedScopes: [...grantedScopes],
      canPublish,
      missingScopes: canPublish ? [] : [UPLOAD_SCOPES[0]!],
      reason: canPublish
        ? null
        : 'videos.insert needs the youtube.upload (or youtube) scope, which was not granted',
    };
  }

  async publish(
    request: PublishRequest,
    state: ResumableState | null,
    io: PublishIO,
  ): Promise<PublishOutcome> {
    const privacy = request.privacy ?? 'private';
    if (!(PRIVACY as readonly string[]).includes(privacy)) {
      return failed(
        'invalid_privacy',
        `YouTube privacy must be private, unlisted or public, not "${privacy}".`,
      );
    }
    const options = optionsSchema.safeParse(request.options);
    if (!options.success) {
      return failed(
        'invalid_options',
        'YouTube options: categoryId is digits, tags a list, madeForKids true/false.',
      );
    }
    let saved = state === null ? null : stateSchema.parse(state);
    if (saved?.videoId !== undefined) return uploaded(saved.videoId);

    for (let sessions = 0; ; sessions++) {
      let probeFirst = true;
      if (saved === null) {
        const started = await this.startSession(request, privacy, options.data, io);
        if (typeof started !== 'string') return started;
        saved = { sessionUri: started };
        // The session URI is durable before the first byte: a crash from here on resumes it.
        await io.saveState(saved, { status: 'uploading', bytesSent: 0 });
        probeFirst = false;
      }
      const result = await this.upload(request, saved, io, probeFirst);
      if (result.kind === 'done') {
        saved = { ...saved, videoId: result.videoId };
        await io.saveState(saved, {
          status: 'processing',
          bytesSent: request.totalBytes,
          platformPostId: result.videoId,
          url: watchUrl(result.videoId),
        });
        return uploaded(result.videoId);
      }
      if (result.kind === 'failed') return result.outcome;
      // The session expired (404).
      if (saved.finalChunkSent === true) {
        return failed(
          'youtube_upload_unconfirmed',
          'The upload session expired after its last chunk was sent; YouTube may hold the video. Not uploading it again.',
        );
      }
      if (sessions + 1 >= MAX_SESSIONS) {
        return failed(
          'youtube_session_expired',
          `${MAX_SESSIONS} upload sessions expired before the upload ended.`,
        );
      }
      saved = null;
    }
  }

  async checkProcessing(state: ResumableState, io: PublishIO): Promise<PublishOutcome> {
    const saved = stateSchema.parse(state);
    if (saved.videoId === undefined) {
      return failed('youtube_no_video', 'There is no uploaded video to check.');
    }
    const videoId = saved.videoId;
    const url = resolveEndpoint(this.settings.baseUrl, YOUTUBE_VIDEOS_URL);
    url.searchParams.set('part', 'status,processingDetails');
    url.searchParams.set('id', videoId);
    const answer = await retryTransient(
      io,
      this.config,
      async () => {
        const got = await this.withToken(io, (token) =>
          this.call({ method: 'GET', url, bearerToken: token, label: 'youtube videos.list' }, io),
        );
        if (got.status >= 500 || got.status === 429) throw this.unexpected(got, 'youtube videos.list');
        return got;
      },
      isTransient,
    );
    if (answer.status !== 200)
      return this.failure(answer, io) ?? failed('youtube_error', `videos.list answered ${answer.status}`);
    const item = videoListSchema.parse(answer.json).items[0];
    if (item === undefined)
      return failed('youtube_video_not_found', 'YouTube no longer lists the uploaded video.');
    const upload = item.status?.uploadStatus;
    const processing = item.processingDetails?.processingStatus;
    // videos resource: status.uploadStatus deleted | failed | processed | rejected | uploaded;
    // processingDetails.processingStatus failed | processing | succeeded | terminated.
    if (upload === 'failed' || processing === 'failed' || processing === 'terminated') {
      const reason =
        item.status?.failureReason ?? item.processingDetails?.processingFailureReason ?? processing;
      return failed(
        `youtube_processing_${reason ?? 'failed'}`,
        `YouTube could not process the video (${reason}).`,
      );
    }
    if (upload === 'rejected') {
      return failed(
        `youtube_rejected_${item.status?.rejectionReason ?? 'unknown'}`,
        'YouTube rejected the video.',
      );
    }
    if (upload === 'deleted') return failed('youtube_video_deleted', 'The video was deleted.');
    if (upload === 'processed' || processing === 'succeeded') {
      return { status: 'published', platformPostId: videoId, platformRef: null, url: watchUrl(videoId) };
    }
    return uploaded(videoId);
  }

  /** Step 1: the session, or a final failure (quota, metadata). Transient failures are retried here. */
  private async startSession(
    request: PublishRequest,
    privacy: string,
    options: z.infer<typeof optionsSchema>,
    io: PublishIO,
  ): Promise<string | PublishOutcome> {
    const metadata = {
      snippet: {
        title: request.title,
        description: request.description ?? '',
        ...(options.categoryId === undefined ? {} : { categoryId: options.categoryId }),
        ...(options.tags === undefined ? {} : { tags: options.tags }),
      },
      status: {
        privacyStatus: privacy,
        ...(options.madeForKids === undefined ? {} : { selfDeclaredMadeForKids: options.madeForKids }),
      },
    };
    // A lost answer to this POST leaves an unused session behind, never a video: safe to repeat.
    const answer = await retryTransient(
      io,
      this.config,
      async () => {
        const got = await this.withToken(io, (token) =>
          this.call(
            {
              method: 'POST',
              url: resolveEndpoint(this.settings.baseUrl, YOUTUBE_INSERT_URL),
              bearerToken: token,
              json: metadata,
              headers: {
                'x-upload-content-length': String(request.totalBytes),
                'x-upload-content-type': request.contentType,
              },
              label: 'youtube videos.insert session',
            },
            io,
          ),
        );
        if (got.status >= 500 || got.status === 429)
          throw this.unexpected(got, 'youtube videos.insert session');
        return got;
      },
      isTransient,
    );
    const location = answer.headers.get('location');
    if (answer.status === 200 && location !== null) return location;
    return (
      this.failure(answer, io) ??
      failed('youtube_session_refused', `videos.insert answered ${answer.status} without a session URI.`)
    );
  }

  /** Steps 3 and 4: chunks, probes after interruptions, until the video exists or the session ends. */
  private async upload(
    request: PublishRequest,
    start: YouTubeState,
    io: PublishIO,
    probeFirst: boolean,
  ): Promise<
    { kind: 'done'; videoId: string } | { kind: 'expired' } | { kind: 'failed'; outcome: PublishOutcome }
  > {
    let saved = start;
    const total = request.totalBytes;
    let offset = 0;
    let needProbe = probeFirst;
    let attempt = 0;
    const interrupted = async (retryAfterMs: number | null, cause: unknown) => {
      attempt += 1;
      if (attempt >= this.config.maxAttempts) {
        throw cause instanceof TransientProviderError
          ? cause
          : new TransientProviderError('YouTube upload kept failing', { provider: this.provider, cause });
      }
      needProbe = true;
      await backoff(io, this.config, attempt, retryAfterMs);
    };

    for (;;) {
      if (io.signal.aborted) throw io.signal.reason;
      let answer: SessionAnswer;
      try {
        if (needProbe) {
          answer = this.readSession(await this.putToSession(saved, io, 'probe', 0, 0, total), io);
        } else {
          const end = Math.min(offset + this.config.youtubeChunkBytes, total);
          if (end === total && saved.finalChunkSent !== true) {
            saved = { ...saved, finalChunkSent: true };
            await io.saveState(saved);
          }
          answer = this.readSession(await this.putToSession(saved, io, 'chunk', offset, end, total), io);
        }
      } catch (error) {
        if (!isTransient(error)) throw error;
        await interrupted(null, error);
        continue;
      }
      switch (answer.kind) {
        case 'done':
          io.onProgress(total);
          return answer;
        case 'expired':
        case 'failed':
          return answer;
        case 'transient':
          await interrupted(answer.retryAfterMs, null);
          continue;
        case 'incomplete': {
          // Resume from what YouTube confirms, never from what we sent.
          if (saved.finalChunkSent === true && answer.confirmed < total) {
            // YouTube lacks bytes, so the last chunk did not arrive whole and no video exists: a
            // session that expires from here on may be replaced. (With chunks as large as most
            // videos, the flag is set before the first byte leaves.)
            saved = { ...saved, finalChunkSent: false };
            await io.saveState(saved);
          }
          const progressed = answer.confirmed > offset;
          const afterChunk = !needProbe;
          offset = answer.confirmed;
          needProbe = offset >= total; // every byte confirmed but no video yet: ask again
          io.onProgress(offset);
          if (progressed) attempt = 0;
          else if (afterChunk) await interrupted(null, null); // a chunk that kept nothing
        }
      }
    }
  }

  private putToSession(
    saved: YouTubeState,
    io: PublishIO,
    kind: 'probe' | 'chunk',
    start: number,
    end: number,
    total: number,
  ): Promise<PublishingAnswer> {
    const call: PublishingCall =
      kind === 'probe'
        ? {
            method: 'PUT',
            // The session URI exactly as YouTube returned it: never rewritten.
            url: saved.sessionUri,
            headers: { 'content-range': `bytes */${total}` },
            media: { open: () => io.openMedia(0, 0), length: 0 },
            label: 'youtube upload status probe',
          }
        : {
            method: 'PUT',
            url: saved.sessionUri,
            headers: {
              'content-range': `bytes ${start}-${end - 1}/${total}`,
              'content-type': 'application/octet-stream',
            },
            media: { open: () => io.openMedia(start, end), length: end - start },
            label: 'youtube chunk upload',
          };
    return this.withToken(io, (token) => this.call({ ...call, bearerToken: token }, io));
  }

  private readSession(answer: PublishingAnswer, io: PublishIO): SessionAnswer {
    if (answer.status === 200 || answer.status === 201) {
      const video = videoSchema.safeParse(answer.json);
      if (video.success) return { kind: 'done', videoId: video.data.id };
      return { kind: 'transient', retryAfterMs: null };
    }
    if (answer.status === 308) {
      // "Range: bytes=0-N" = N + 1 bytes stored; no Range = none.
      const range = /^bytes=0-(\d+)$/.exec(answer.headers.get('range') ?? '');
      return { kind: 'incomplete', confirmed: range ? Number(range[1]) + 1 : 0 };
    }
    if (answer.status === 404) return { kind: 'expired' };
    if (answer.status >= 500 || answer.status === 429) {
      return { kind: 'transient', retryAfterMs: retryAfterMs(answer) };
    }
    const outcome = this.failure(answer, io);
    return {
      kind: 'failed',
      outcome: outcome ?? failed('youtube_upload_refused', `The upload session answered ${answer.status}.`),
    };
  }

  /** A final failure from a YouTube error body; quota failures carry the next midnight Pacific. */
  private failure(answer: PublishingAnswer, io: PublishIO): PublishOutcome | null {
    const parsed = errorSchema.safeParse(answer.json);
    const reason = parsed.success ? parsed.data.error.errors?.[0]?.reason : undefined;
    const message = parsed.success ? (parsed.data.error.message ?? '') : '';
    if (reason === 'quotaExceeded' || reason === 'uploadLimitExceeded') {
      // Quotas reset at midnight Pacific: retrying before then only spends calls.
      return {
        status: 'failed',
        errorCode: reason,
        message: message || reason,
        retryAt: nextPacificMidnight(io.now()),
      };
    }
    if (reason === 'insufficientPermissions' || reason === 'forbidden') {
      throw new ReauthorizationRequired('YouTube needs a scope the account did not grant', {
        provider: this.provider,
        providerErrorCode: reason,
        providerErrorDescription: message,
        httpStatus: answer.status,
      });
    }
    if (answer.status >= 400 && answer.status < 500) {
      return failed(
        reason ?? `youtube_http_${answer.status}`,
        message || `YouTube answered ${answer.status}.`,
      );
    }
    return null;
  }

  private withToken(
    io: PublishIO,
    send: (token: string) => Promise<PublishingAnswer>,
  ): Promise<PublishingAnswer> {
    return withTokenRetry(this.provider, io, send, (answer) => (answer.status === 401 ? 'authError' : null));
  }

  private call(call: PublishingCall, io?: PublishIO): Promise<PublishingAnswer> {
    return callPlatform(this.provider, this.http, call, io?.signal);
  }

  private unexpected(answer: PublishingAnswer, label: string): TransientProviderError {
    return new TransientProviderError(`${label} answered ${answer.status}`, {
      provider: this.provider,
      httpStatus: answer.status,
      providerErrorCode: errorSchema.safeParse(answer.json).data?.error.errors?.[0]?.reason ?? null,
    });
  }
}

function isTransient(error: unknown): boolean {
  return error instanceof TransientProviderError;
}

function retryAfterMs(answer: PublishingAnswer): number | null {
  const value = answer.headers.get('retry-after');
  return value !== null && /^\d+$/.test(value) ? Number(value) * 1000 : null;
}

function watchUrl(videoId: string): string {
  return `https://www.youtube.com/watch?v=${videoId}`;
}

/** The video exists; YouTube still processes it. */
function uploaded(videoId: string): PublishOutcome {
  return { status: 'processing', platformPostId: videoId, platformRef: null, url: watchUrl(videoId) };
}
