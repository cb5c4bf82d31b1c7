import { createHash } from 'node:crypto';
import { z } from 'zod';
import { RateLimited, ReauthorizationRequired, TransientProviderError } from '../../domain/errors.js';
import type {
  PlatformIdentity,
  PlatformPublisher,
  PublishIO,
  PublishOutcome,
  PublishRequest,
  ResumableState,
} from '../../publishing/platformPublisher.js';
import { failed } from '../../publishing/platformPublisher.js';
import { captionOf } from '../caption.js';
import {
  backoff,
  callPlatform,
  type ProviderHttpOptions,
  type ProviderSettings,
  type PublishingAnswer,
  parseRetryAfter,
  resolveEndpoint,
  retryTransient,
  withTokenRetry,
} from '../publishingHttp.js';
import type { PlatformPublishingSettings } from '../publishingSettings.js';
import { type ChunkPlan, ChunkPlanError, chunkAt, chunkIndexAt, planChunks } from './chunkPlan.js';
import { RequestWindow } from './requestWindow.js';

/**
 * TikTok Content Posting API (developers.tiktok.com/doc/content-posting-api-reference-direct-post,
 * …-upload-video, …-media-transfer-guide, …-get-video-status).
 *
 * The rules that keep one publication one post:
 * - a direct post asks creator_info/query first, and a privacy level the creator is not offered
 *   fails before any upload (no silent fallback to another level);
 * - publish_id and upload_url are saved before the first chunk is PUT;
 * - once an init was answered, every doubt (a reset, a 5xx, a crash) is answered by status/fetch,
 *   whose `uploaded_bytes` says which chunk comes next: never by a second init. A lost answer to
 *   the init itself is retried: no bytes went to that upload_url, so it can never become a post.
 */

const HOST = 'https://open.tiktokapis.com';
export const TIKTOK_CREATOR_INFO_URL = `${HOST}/v2/post/publish/creator_info/query/`;
export const TIKTOK_DIRECT_INIT_URL = `${HOST}/v2/post/publish/video/init/`;
export const TIKTOK_INBOX_INIT_URL = `${HOST}/v2/post/publish/inbox/video/init/`;
export const TIKTOK_STATUS_URL = `${HOST}/v2/post/publish/status/fetch/`;
export const TIKTOK_USER_INFO_URL = `${HOST}/v2/user/info/?fields=open_id,display_name`;

/** Per token and per minute, from each endpoint's reference page. */
const LIMITS = { creator: 20, init: 6, status: 30 } as const;
/** post_info.title: at most 2,200 UTF-16 code units (a JS string's length). */
const MAX_TITLE = 2200;

const stateSchema = z.object({
  publishId: z.string().min(1),
  uploadUrl: z.string().min(1),
  mode: z.enum(['direct', 'inbox']),
  videoSize: z.number().int().positive(),
  chunkSize: z.number().int().positive(),
  totalChunkCount: z.number().int().positive(),
  /** Every chunk was accepted (201): only status/fetch remains. */
  uploaded: z.boolean().optional(),
});
type TikTokState = z.infer<typeof stateSchema>;

const envelope = z.object({
  data: z.unknown().optional(),
  error: z.object({ code: z.string(), message: z.string().optional() }).optional(),
});
const creatorInfoSchema = z.object({ privacy_level_options: z.array(z.string()) });
const initSchema = z.object({ publish_id: z.string().min(1), upload_url: z.string().min(1) });
const statusSchema = z.object({
  status: z.string(),
  fail_reason: z.string().optional(),
  publicaly_available_post_id: z.array(z.union([z.string(), z.number()])).optional(),
  uploaded_bytes: z.number().optional(),
});
const userInfoSchema = z.object({
  user: z.object({ open_id: z.string(), display_name: z.string().optional() }),
});

/** post_info options a caller may set, in TikTok's own names. */
const optionsSchema = z
  .object({
    disable_comment: z.boolean().optional(),
    disable_duet: z.boolean().optional(),
    disable_stitch: z.boolean().optional(),
    video_cover_timestamp_ms: z.number().int().nonnegative().optional(),
    brand_content_toggle: z.boolean().optional(),
    brand_organic_toggle: z.boolean().optional(),
    is_aigc: z.boolean().optional(),
  })
  .strict();

type ApiResult = { ok: true; data: unknown } | { ok: false; code: string; message: string };
type Limited = keyof typeof LIMITS;

export class TikTokPublisher implements PlatformPublisher {
  readonly provider = 'tiktok' as const;
  /** TikTok's per-token limits, kept by this process so that it waits instead of being refused. */
  private readonly windows = new RequestWindow();

  constructor(
    private readonly settings: Pick<ProviderSettings, 'baseUrl'>,
    private readonly http: ProviderHttpOptions,
    private readonly config: PlatformPublishingSettings,
  ) {}

  async authenticate(accessToken: string, grantedScopes: readonly string[]): Promise<PlatformIdentity> {
    const answer = await callPlatform(this.provider, this.http, {
      method: 'GET',
      url: this.url(TIKTOK_USER_INFO_URL),
      bearerToken: accessToken,
      label: 'tiktok user info',
    });
    const code = errorCode(answer);
    if (code === 'access_token_invalid' || code === 'scope_not_authorized' || answer.status === 401) {
      throw new ReauthorizationRequired('TikTok refused the access token', {
        provider: this.provider,
        providerErrorCode: code ?? 'unauthorized',
        httpStatus: answer.status,
      });
    }
    if (answer.status !== 200 || (code !== null && code !== 'ok')) {
      throw new TransientProviderError(`tiktok user info answered ${answer.status}`, {
        provider: this.provider,
        providerErrorCode: code,
        httpStatus: answer.status,
      });
    }
    const user = userInfoSchema.parse(envelope.parse(answer.json).data).user;
    const publishing = ['video.publish', 'video.upload'];
    const missing = publishing.filter((scope) => !grantedScopes.includes(scope));
    const canPublish = missing.length < publishing.length;
    return {
      provider: this.provider,
      externalAccountId: user.open_id,
      displayName: user.display_name ?? null,
      grantedScopes: [...grantedScopes],
      canPublish,
      missingScopes: missing,
      reason: canPublish
        ? null
        : 'Posting needs video.publish (direct post) or video.upload (the user’s inbox); neither was granted',
    };
  }

  async publish(
    request: PublishRequest,
    state: ResumableState | null,
    io: PublishIO,
  ): Promise<PublishOutcome> {
    let saved = state === null ? null : stateSchema.parse(state);
    let next = 0;
    if (saved === null) {
      const started = await this.init(request, io);
      if ('status' in started) return started;
      saved = started;
      // Durable before the first chunk: from here on this publication never inits again.
      await io.saveState(saved, { status: 'uploading', bytesSent: 0, platformRef: saved.publishId });
    } else if (saved.uploaded !== true) {
      // Resumed (a crash, a restart): ask TikTok what it holds before sending anything.
      const look = await this.lookAt(saved, io);
      if (look.outcome !== null) return look.outcome;
      next = chunkIndexAt(plan(saved), look.uploadedBytes);
    }

    if (saved.uploaded !== true) {
      const sent = await this.sendChunks(saved, next, io);
      if (sent !== null) return sent;
      saved = { ...saved, uploaded: true };
      await io.saveState(saved, {
        status: 'processing',
        bytesSent: saved.videoSize,
        platformRef: saved.publishId,
      });
    }

    for (let looks = 1; ; looks++) {
      const look = await this.lookAt(saved, io);
      if (look.outcome !== null) return look.outcome;
      if (looks >= this.config.tiktokStatusLooks) return processing(saved.publishId);
      await io.sleep(this.config.tiktokStatusIntervalMs);
    }
  }

  async checkProcessing(state: ResumableState, io: PublishIO): Promise<PublishOutcome> {
    const saved = stateSchema.parse(state);
    const look = await this.lookAt(saved, io);
    return look.outcome ?? processing(saved.publishId);
  }

  /** creator_info (direct posts), the privacy check, then the init: a state, or a final failure. */
  private async init(request: PublishRequest, io: PublishIO): Promise<TikTokState | PublishOutcome> {
    const mode = request.mode ?? 'direct';
    let chunkPlan: ChunkPlan;
    try {
      chunkPlan = planChunks(request.totalBytes, this.config.tiktokChunkBytes);
    } catch (error) {
      if (error instanceof ChunkPlanError) return failed(error.code, error.message);
      throw error;
    }
    const options = optionsSchema.safeParse(request.options);
    if (!options.success) {
      return failed(
        'invalid_options',
        `TikTok options: ${options.error.issues.map((i) => i.path.join('.') || i.message).join(', ')}`,
      );
    }
    const sourceInfo = {
      source: 'FILE_UPLOAD',
      video_size: chunkPlan.videoSize,
      chunk_size: chunkPlan.chunkSize,
      total_chunk_count: chunkPlan.totalChunkCount,
    };

    let body: Record<string, unknown> = { source_info: sourceInfo };
    if (mode === 'direct') {
      const privacy = request.privacy ?? this.config.tiktokDefaultPrivacy;
      const title = captionOf(request);
      if (title.length > MAX_TITLE) {
        return failed(
          'caption_too_long',
          `TikTok captions are at most ${MAX_TITLE} UTF-16 units (this one: ${title.length}).`,
        );
      }
      const info = await this.api('creator', TIKTOK_CREATOR_INFO_URL, {}, io, 'tiktok creator_info');
      if (!info.ok) return failed(info.code, info.message);
      const offered = creatorInfoSchema.parse(info.data).privacy_level_options;
      if (!offered.includes(privacy)) {
        return failed(
          'privacy_level_not_offered',
          `TikTok offers this account ${offered.join(', ') || 'no privacy level'}; "${privacy}" is not one of them. Nothing was uploaded.`,
        );
      }
      body = { post_info: { title, privacy_level: privacy, ...options.data }, source_info: sourceInfo };
    }
    const url = mode === 'direct' ? TIKTOK_DIRECT_INIT_URL : TIKTOK_INBOX_INIT_URL;
    const init = await this.api('init', url, body, io, `tiktok ${mode} init`);
    if (!init.ok) return failed(init.code, init.message);
    const answer = initSchema.parse(init.data);
    return {
      publishId: answer.publish_id,
      // upload_url exactly as TikTok returned it: never rewritten.
      uploadUrl: answer.upload_url,
      mode,
      videoSize: chunkPlan.videoSize,
      chunkSize: chunkPlan.chunkSize,
      totalChunkCount: chunkPlan.totalChunkCount,
    };
  }

  /** PUTs the chunks from `first` on, in order; null when TikTok has them all, else a final failure. */
  private async sendChunks(saved: TikTokState, first: number, io: PublishIO): Promise<PublishOutcome | null> {
    const chunks = plan(saved);
    let index = first;
    let attempt = 0;
    while (index < chunks.totalChunkCount) {
      if (io.signal.aborted) throw io.signal.reason;
      const chunk = chunkAt(chunks, index);
      let answer: PublishingAnswer | null = null;
      try {
        // The PUT to upload_url carries no access token: a refusal here is not an auth failure.
        answer = await callPlatform(
          this.provider,
          this.http,
          {
            method: 'PUT',
            url: saved.uploadUrl,
            headers: {
              'content-type': 'video/mp4',
              'content-range': `bytes ${chunk.start}-${chunk.end - 1}/${chunks.videoSize}`,
            },
            media: { open: () => io.openMedia(chunk.start, chunk.end), length: chunk.end - chunk.start },
            label: 'tiktok chunk upload',
          },
          io.signal,
        );
      } catch (error) {
        if (!(error instanceof TransientProviderError)) throw error;
      }
      if (answer !== null && (answer.status === 206 || answer.status === 201)) {
        index += 1;
        attempt = 0;
        io.onProgress(chunk.end);
        if (answer.status === 201) return null;
        continue;
      }
      if (answer !== null && answer.status < 500 && answer.status !== 429) {
        return failed(
          errorCode(answer) ?? `tiktok_upload_http_${answer.status}`,
          `TikTok refused chunk ${index + 1} of ${chunks.totalChunkCount} (HTTP ${answer.status}).`,
        );
      }
      // Reset, timeout or 5xx: the chunk may or may not be in. Ask TikTok, never guess.
      attempt += 1;
      if (attempt >= this.config.maxAttempts) {
        throw new TransientProviderError('TikTok chunk upload kept failing', {
          provider: this.provider,
          httpStatus: answer?.status ?? null,
        });
      }
      await backoff(io, this.config, attempt);
      const look = await this.lookAt(saved, io);
      if (look.outcome !== null) return look.outcome;
      index = chunkIndexAt(chunks, look.uploadedBytes);
    }
    return null;
  }

  /** One status/fetch: a final outcome, or how many bytes TikTok holds while it still works. */
  private async lookAt(
    saved: TikTokState,
    io: PublishIO,
  ): Promise<{ outcome: PublishOutcome | null; uploadedBytes: number }> {
    const result = await this.api(
      'status',
      TIKTOK_STATUS_URL,
      { publish_id: saved.publishId },
      io,
      'tiktok status/fetch',
    );
    if (!result.ok) return { outcome: failed(result.code, result.message), uploadedBytes: 0 };
    const status = statusSchema.parse(result.data);
    const uploadedBytes = status.uploaded_bytes ?? 0;
    switch (status.status) {
      case 'PUBLISH_COMPLETE': {
        // A SELF_ONLY post (and a public one still in moderation) has no public id: null, publish_id kept.
        const postId = status.publicaly_available_post_id?.[0];
        return {
          outcome: {
            status: 'published',
            platformPostId: postId === undefined ? null : String(postId),
            platformRef: saved.publishId,
            url: null,
          },
          uploadedBytes,
        };
      }
      case 'SEND_TO_USER_INBOX':
        return {
          outcome: { status: 'sent_to_inbox', platformPostId: null, platformRef: saved.publishId, url: null },
          uploadedBytes,
        };
      case 'FAILED':
        return {
          outcome: failed(
            status.fail_reason ?? 'tiktok_publish_failed',
            `TikTok could not post the video (${status.fail_reason ?? 'no reason given'}).`,
          ),
          uploadedBytes,
        };
      default:
        return { outcome: null, uploadedBytes };
    }
  }

  /**
   * One call to a token-carrying JSON endpoint: paced under TikTok's per-token limit, one refresh on
   * access_token_invalid, transient failures (5xx, resets, rate limits) retried with backoff.
   */
  private api(
    kind: Limited,
    realUrl: string,
    body: unknown,
    io: PublishIO,
    label: string,
  ): Promise<ApiResult> {
    return retryTransient(
      io,
      this.config,
      async () => {
        const answer = await withTokenRetry(
          this.provider,
          io,
          async (token) => {
            const wait = this.windows.reserve(`${kind}:${tokenKey(token)}`, LIMITS[kind], io.now());
            if (wait > 0) await io.sleep(wait);
            return callPlatform(
              this.provider,
              this.http,
              { method: 'POST', url: this.url(realUrl), bearerToken: token, json: body, label },
              io.signal,
            );
          },
          (got) => {
            const code = errorCode(got);
            if (code === 'access_token_invalid') return code;
            return got.status === 401 && code !== 'scope_not_authorized' ? 'unauthorized' : null;
          },
        );
        const code = errorCode(answer);
        if (code === 'rate_limit_exceeded' || answer.status === 429) {
          throw new RateLimited(`${label} was rate limited`, {
            provider: this.provider,
            providerErrorCode: code,
            httpStatus: answer.status,
            retryAfterMs:
              parseRetryAfter(answer.headers.get('retry-after'), io.now()) ?? 60_000 / LIMITS[kind],
          });
        }
        if (answer.status >= 500 || code === 'internal_error') {
          throw new TransientProviderError(`${label} answered ${answer.status}`, {
            provider: this.provider,
            providerErrorCode: code,
            httpStatus: answer.status,
          });
        }
        if (code === 'scope_not_authorized') {
          throw new ReauthorizationRequired('TikTok needs a scope the account did not grant', {
            provider: this.provider,
            providerErrorCode: code,
            httpStatus: answer.status,
          });
        }
        const parsed = envelope.safeParse(answer.json);
        if (answer.status === 200 && (code === 'ok' || code === null) && parsed.success) {
          return { ok: true, data: parsed.data.data } as ApiResult;
        }
        return {
          ok: false,
          code: code ?? `tiktok_http_${answer.status}`,
          message: parsed.data?.error?.message || `${label} answered ${answer.status}`,
        } as ApiResult;
      },
      (error) => error instanceof TransientProviderError || error instanceof RateLimited,
    );
  }

  private url(realUrl: string): URL {
    return resolveEndpoint(this.settings.baseUrl, realUrl);
  }
}

function plan(saved: TikTokState): ChunkPlan {
  return { videoSize: saved.videoSize, chunkSize: saved.chunkSize, totalChunkCount: saved.totalChunkCount };
}

function errorCode(answer: PublishingAnswer): string | null {
  const parsed = envelope.safeParse(answer.json);
  return parsed.success ? (parsed.data.error?.code ?? null) : null;
}

/** Windows are keyed by a digest, so that no token sits in a map key. */
function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 16);
}

function processing(publishId: string): PublishOutcome {
  return { status: 'processing', platformPostId: null, platformRef: publishId, url: null };
}
