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
  resolveEndpoint,
  retryTransient,
  withTokenRetry,
} from '../publishingHttp.js';
import type { PlatformPublishingSettings } from '../publishingSettings.js';

/**
 * Instagram API with Instagram Login, content publishing on graph.instagram.com
 * (developers.facebook.com/docs/instagram-platform/content-publishing). Instagram Login documents
 * no upload of bytes: Meta fetches `video_url` (request.mediaUrl), which the service makes public.
 *
 * The rules that keep one publication one post:
 * - the container id is saved before its status is polled; a resumed publication reads the
 *   container's status_code first and never creates a second container;
 * - a container already PUBLISHED is never published again;
 * - a media_publish whose answer was lost is not sent again blindly: the status says whether it
 *   took (PUBLISHED) or not (still FINISHED).
 * Once the container is FINISHED, Meta has the video: `io.releaseMedia` kills the link to our file.
 * After media_publish the media's permalink is read for the publication's url; the post exists by
 * then, so a failure there is a warning and a null url, never a failed publication.
 * The expired-token error is code 190, usually with HTTP 400: an auth refusal whatever the status.
 */

const GRAPH = 'https://graph.instagram.com';
export const INSTAGRAM_ME_URL = `${GRAPH}/me?fields=user_id,username`;
const PUBLISH_SCOPE = 'instagram_business_content_publish';
/** Graph error codes (Graph API error handling): 1 and 2 are transient; 4, 17, 32, 613 are throttling. */
const TRANSIENT_CODES = new Set([1, 2]);
const THROTTLE_CODES = new Set([4, 17, 32, 613]);

const stateSchema = z.object({
  userId: z.string().min(1),
  containerId: z.string().min(1),
  mediaId: z.string().optional(),
});
type InstagramState = z.infer<typeof stateSchema>;

const graphErrorSchema = z.object({
  error: z.object({
    message: z.string().optional(),
    code: z.number().optional(),
    error_subcode: z.number().optional(),
  }),
});
const idSchema = z.object({ id: z.union([z.string(), z.number()]).transform(String) });
const meSchema = z.object({
  user_id: z.union([z.string(), z.number()]).transform(String),
  username: z.string().optional(),
});
const containerSchema = z.object({ status_code: z.string(), status: z.string().optional() });
/**
 * IG Media: `permalink` is omitted for media flagged for copyright (then the url stays null). It is
 * handed to our callers as a link, so only an https URL is taken.
 */
const mediaSchema = z.object({
  permalink: z
    .string()
    .url()
    .refine((url) => url.startsWith('https://'))
    .optional(),
});
const limitSchema = z.object({
  data: z.array(
    z.object({ quota_usage: z.number(), config: z.object({ quota_total: z.number() }).optional() }),
  ),
});

/** Reels options a caller may set, in Meta's names. */
const optionsSchema = z
  .object({
    share_to_feed: z.boolean().optional(),
    thumb_offset: z.number().int().nonnegative().optional(),
    cover_url: z.string().url().optional(),
    audio_name: z.string().optional(),
  })
  .strict();

type GraphResult =
  | { ok: true; json: unknown }
  | { ok: false; code: number | null; subcode: number | null; message: string; status: number };

export class InstagramPublisher implements PlatformPublisher {
  readonly provider = 'instagram' as const;

  constructor(
    private readonly settings: Pick<ProviderSettings, 'baseUrl'>,
    private readonly http: ProviderHttpOptions,
    private readonly config: PlatformPublishingSettings,
  ) {}

  async authenticate(accessToken: string, grantedScopes: readonly string[]): Promise<PlatformIdentity> {
    const answer = await callPlatform(this.provider, this.http, {
      method: 'GET',
      url: resolveEndpoint(this.settings.baseUrl, INSTAGRAM_ME_URL),
      bearerToken: accessToken,
      label: 'instagram profile',
    });
    const error = graphErrorSchema.safeParse(answer.json);
    if (error.success || answer.status !== 200) {
      const code = error.data?.error.code ?? null;
      if (code === 190 || answer.status === 401) {
        throw new ReauthorizationRequired('Instagram refused the access token', {
          provider: this.provider,
          providerErrorCode: '190',
          httpStatus: answer.status,
        });
      }
      throw new TransientProviderError(`instagram profile answered ${answer.status}`, {
        provider: this.provider,
        providerErrorCode: code === null ? null : String(code),
        httpStatus: answer.status,
      });
    }
    const me = meSchema.parse(answer.json);
    const canPublish = grantedScopes.includes(PUBLISH_SCOPE);
    return {
      provider: this.provider,
      externalAccountId: me.user_id,
      displayName: me.username ?? null,
      grantedScopes: [...grantedScopes],
      canPublish,
      missingScopes: canPublish ? [] : [PUBLISH_SCOPE],
      reason: canPublish ? null : `Publishing needs the ${PUBLISH_SCOPE} permission, which was not granted`,
    };
  }

  async publish(
    request: PublishRequest,
    state: ResumableState | null,
    io: PublishIO,
  ): Promise<PublishOutcome> {
    let saved = state === null ? null : stateSchema.parse(state);
    if (saved === null) {
      if (request.mediaUrl === null) {
        return failed(
          'media_url_required',
          'Instagram fetches the video from a public URL (video_url); none was given.',
        );
      }
      const options = optionsSchema.safeParse(request.options);
      if (!options.success) {
        return failed(
          'invalid_options',
          'Instagram options: share_to_feed, thumb_offset, cover_url, audio_name.',
        );
      }
      const caption = captionOf(request);
      if (caption.length > 2200)
        return failed('caption_too_long', 'Instagram captions are at most 2,200 characters.');

      const me = await this.graph(io, 'GET', INSTAGRAM_ME_URL, undefined, 'instagram profile', true);
      if (!me.ok) return graphFailure(me);
      const userId = meSchema.parse(me.json).user_id;
      const form: Record<string, string> = { media_type: 'REELS', video_url: request.mediaUrl, caption };
      for (const [key, value] of Object.entries(options.data)) form[key] = String(value);
      // A lost answer here leaves an unused container behind (it expires in 24 hours), never a post:
      // only the container we know of is ever published.
      const created = await this.graph(
        io,
        'POST',
        this.versioned(`/${userId}/media`),
        form,
        'instagram media container',
        true,
      );
      if (!created.ok) return graphFailure(created);
      saved = { userId, containerId: idSchema.parse(created.json).id };
      await io.saveState(saved, { status: 'processing', platformRef: saved.containerId });
    }
    return this.drive(saved, io, this.config.instagramStatusLooks);
  }

  async checkProcessing(state: ResumableState, io: PublishIO): Promise<PublishOutcome> {
    return this.drive(stateSchema.parse(state), io, 1);
  }

  /** Reads status_code up to `looks` times; publishes a FINISHED container once. */
  private async drive(saved: InstagramState, io: PublishIO, looks: number): Promise<PublishOutcome> {
    if (saved.mediaId !== undefined) return published(saved, saved.mediaId);
    for (let look = 1; ; look++) {
      const status = await this.containerStatus(saved, io);
      if (typeof status !== 'string') return status;
      switch (status) {
        // Published before (perhaps by a process that died before saving the media id): never again.
        case 'PUBLISHED':
          return published(saved, null);
        case 'FINISHED':
          // Meta has fetched video_url and built the container from it: the link we serve the file
          // at dies now, not when the publication ends or its hour runs out.
          await io.releaseMedia?.();
          return this.publishContainer(saved, io);
        case 'ERROR':
          return failed(
            'instagram_container_error',
            'Instagram could not process the video (status_code ERROR).',
          );
        case 'EXPIRED':
          return failed('instagram_container_expired', 'The container was not published within 24 hours.');
      }
      if (look >= looks) return processing(saved);
      await io.sleep(this.config.instagramStatusIntervalMs);
    }
  }

  private async containerStatus(saved: InstagramState, io: PublishIO): Promise<string | PublishOutcome> {
    const answer = await this.graph(
      io,
      'GET',
      this.versioned(`/${saved.containerId}?fields=status_code,status`),
      undefined,
      'instagram container status',
      true,
    );
    if (!answer.ok) return graphFailure(answer);
    return containerSchema.parse(answer.json).status_code;
  }

  private async publishContainer(saved: InstagramState, io: PublishIO): Promise<PublishOutcome> {
    // The limit is a rolling 24 hours and its size is documented twice differently: read it live.
    const limit = await this.graph(
      io,
      'GET',
      this.versioned(`/${saved.userId}/content_publishing_limit?fields=config,quota_usage`),
      undefined,
      'instagram publishing limit',
      true,
    );
    if (!limit.ok) return graphFailure(limit);
    const usage = limitSchema.parse(limit.json).data[0];
    if (usage !== undefined && usage.config !== undefined && usage.quota_usage >= usage.config.quota_total) {
      return failed(
        'publishing_limit_reached',
        `The account used ${usage.quota_usage} of its ${usage.config.quota_total} posts in the last 24 hours.`,
      );
    }
    for (let attempt = 1; ; attempt++) {
      let answer: GraphResult | null = null;
      try {
        // Not retried inside: a resent media_publish could post twice. Doubts go to status_code.
        answer = await this.graph(
          io,
          'POST',
          this.versioned(`/${saved.userId}/media_publish`),
          { creation_id: saved.containerId },
          'instagram media_publish',
          false,
        );
      } catch (error) {
        if (!(error instanceof TransientProviderError) && !(error instanceof RateLimited)) throw error;
      }
      if (answer?.ok === true) {
        const mediaId = idSchema.parse(answer.json).id;
        const done = { ...saved, mediaId };
        await io.saveState(done, {
          status: 'published',
          platformPostId: mediaId,
          platformRef: saved.containerId,
        });
        return published(done, mediaId, await this.permalinkOf(mediaId, io));
      }
      if (answer !== null && answer.ok === false) {
        // 9007 / 2207027: not ready yet (a FINISHED read can precede readiness by a moment).
        if (answer.code === 9007) return processing(saved);
        if (answer.code === 9 && answer.subcode === 2207042) {
          return failed('publishing_limit_reached', answer.message);
        }
        if (answer.status < 500) return graphFailure(answer);
      }
      // No answer, or a 5xx: did it take? Ask the container before anything else.
      if (attempt >= this.config.maxAttempts) {
        throw new TransientProviderError('Instagram media_publish kept failing', { provider: this.provider });
      }
      await backoff(io, this.config, attempt);
      const status = await this.containerStatus(saved, io);
      if (typeof status !== 'string') return status;
      if (status === 'PUBLISHED') return published(saved, null);
      if (status !== 'FINISHED') return this.drive(saved, io, 1);
    }
  }

  /**
   * The published media's permanent URL: `GET /<IG_MEDIA_ID>?fields=permalink` on
   * graph.instagram.com (IG Media reference, Instagram API with Instagram Login). Whatever goes
   * wrong (5xx past the retries, a refused token, an answer without permalink) leaves the url null.
   */
  private async permalinkOf(mediaId: string, io: PublishIO): Promise<string | null> {
    const label = 'instagram media permalink';
    try {
      const answer = await this.graph(
        io,
        'GET',
        this.versioned(`/${mediaId}?fields=permalink`),
        undefined,
        label,
        true,
      );
      if (!answer.ok) {
        io.warn?.('the permalink of a published Instagram media could not be read', {
          mediaId,
          httpStatus: answer.status,
          providerErrorCode: answer.code,
          providerErrorDescription: answer.message,
        });
        return null;
      }
      const media = mediaSchema.safeParse(answer.json);
      if (media.success) return media.data.permalink ?? null;
      io.warn?.('a published Instagram media answered a permalink that is not an https URL', { mediaId });
      return null;
    } catch (error) {
      io.warn?.('the permalink of a published Instagram media could not be read', {
        mediaId,
        err: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      });
      return null;
    }
  }

  /**
   * One Graph call carrying our token: one refresh on code 190 (any HTTP status); code 10 and
   * 200–299 (a missing permission) are ReauthorizationRequired; with `retry`, 5xx, codes 1/2 and
   * throttling are retried with backoff, and without it they are thrown for the caller to judge.
   */
  private graph(
    io: PublishIO,
    method: 'GET' | 'POST',
    realUrl: string,
    form: Record<string, string> | undefined,
    label: string,
    retry: boolean,
  ): Promise<GraphResult> {
    const attempt = async (): Promise<GraphResult> => {
      const answer = await withTokenRetry(
        this.provider,
        io,
        (token) =>
          callPlatform(
            this.provider,
            this.http,
            { method, url: resolveEndpoint(this.settings.baseUrl, realUrl), bearerToken: token, form, label },
            io.signal,
          ),
        (got) => (graphCode(got) === 190 || got.status === 401 ? '190' : null),
      );
      if (answer.status === 200) return { ok: true, json: answer.json };
      const parsed = graphErrorSchema.safeParse(answer.json);
      const code = parsed.data?.error.code ?? null;
      const subcode = parsed.data?.error.error_subcode ?? null;
      const message = parsed.data?.error.message ?? `${label} answered ${answer.status}`;
      const details = {
        provider: this.provider,
        providerErrorCode: code === null ? null : String(code),
        providerErrorDescription: message,
        httpStatus: answer.status,
      };
      if (code !== null && THROTTLE_CODES.has(code)) throw new RateLimited(`${label} was throttled`, details);
      if (answer.status >= 500 || (code !== null && TRANSIENT_CODES.has(code))) {
        throw new TransientProviderError(`${label} answered ${answer.status}`, details);
      }
      if (code === 10 || (code !== null && code >= 200 && code <= 299)) {
        throw new ReauthorizationRequired('Instagram needs a permission the account did not grant', details);
      }
      return { ok: false, code, subcode, message, status: answer.status };
    };
    if (!retry) return attempt();
    return retryTransient(
      io,
      this.config,
      attempt,
      (e) => e instanceof TransientProviderError || e instanceof RateLimited,
    );
  }

  private versioned(path: string): string {
    return `${GRAPH}/${this.config.instagramGraphApiVersion}${path}`;
  }
}

function graphCode(answer: PublishingAnswer): number | null {
  return graphErrorSchema.safeParse(answer.json).data?.error.code ?? null;
}

function graphFailure(result: Extract<GraphResult, { ok: false }>): PublishOutcome {
  const code =
    result.code === null
      ? `instagram_http_${result.status}`
      : `instagram_${result.code}${result.subcode === null ? '' : `_${result.subcode}`}`;
  return failed(code, result.message);
}

function published(saved: InstagramState, mediaId: string | null, url: string | null = null): PublishOutcome {
  return { status: 'published', platformPostId: mediaId, platformRef: saved.containerId, url };
}

function processing(saved: InstagramState): PublishOutcome {
  return { status: 'processing', platformPostId: null, platformRef: saved.containerId, url: null };
}
