import { randomBytes, randomInt } from 'node:crypto';
import { request } from 'undici';
import type { AccessTokenRecord } from '../../simulator/state.js';
import { traceId } from '../../simulator/state.js';
import {
  parseJsonBody,
  readSmallBody,
  respond,
  type SimUpload,
  type UploadContext,
  type UploadExchange,
  type UploadRouteKind,
  type UploadRoutes,
} from '../../simulator/uploads.js';
import { json, type SimResponse } from '../../simulator/wire.js';

/**
 * Instagram API with Instagram Login, content publishing (graph.instagram.com), as documented in:
 * - [CP] "Content Publishing" (developers.facebook.com/docs/instagram-platform/content-publishing):
 *   POST /<IG_ID>/media (media_type=REELS, video_url on a public server that Meta cURLs, caption),
 *   GET /<CONTAINER_ID>?fields=status_code (EXPIRED after 24 hours, ERROR, FINISHED, IN_PROGRESS,
 *   PUBLISHED; "query a container's status once per minute, for no more than 5 minutes"),
 *   POST /<IG_ID>/media_publish (creation_id), GET /<IG_ID>/content_publishing_limit.
 * - [EC] "Error codes" (developers.facebook.com/docs/instagram-platform/error-codes): 9007 / 2207027
 *   "media is not ready for publishing", 9 / 2207042 "reached the maximum number of posts".
 * - [GE] Graph API error handling: 190 = invalid or expired token (HTTP 400), 2 = transient,
 *   10 and 200-299 = permission.
 * - [IM] "IG Media" reference (developers.facebook.com/docs/instagram-platform/reference/instagram-media):
 *   GET graph.instagram.com/<API_VERSION>/<IG_MEDIA_ID>?fields=<LIST_OF_FIELDS>, among them
 *   `permalink`, the media's permanent URL; media owned by the token's professional account only.
 * The resumable byte upload (rupload.facebook.com) is for Facebook Login apps only: not modelled.
 */

const PATH = /^(?:\/v\d+\.\d+)?\/(\d+)(?:\/(media|media_publish|content_publishing_limit))?$/;
const CONTAINER_LIFETIME_MS = 86_400_000;
const PUBLISH_SCOPE = 'instagram_business_content_publish';

interface InstagramContainer {
  videoUrl: string;
  caption: string;
  /** The background download of video_url: null while it runs. */
  fetched: 'ok' | 'failed' | null;
  looksAfterFetch: number;
  publishedMediaId: string | null;
  /** The published media's permanent URL ([IM] `permalink`), set by media_publish. */
  permalink: string | null;
}

function graphError(code: number, message: string, subcode?: number, status = 400): SimResponse {
  return json(status, {
    error: { message, type: 'OAuthException', code, error_subcode: subcode, fbtrace_id: traceId() },
  });
}

const invalidToken = () => graphError(190, 'Error validating access token: Session has expired.', 463);

function container(upload: SimUpload): InstagramContainer {
  return upload.details as unknown as InstagramContainer;
}

/** An id like Meta's: 17 or 18 digits, carried as a string. */
function graphId(): string {
  return `179${String(randomInt(0, 2 ** 47)).padStart(15, '0')}`;
}

async function readParams(exchange: UploadExchange): Promise<URLSearchParams> {
  const params = new URLSearchParams(exchange.query);
  const text = await readSmallBody(exchange.incoming);
  const type = String(exchange.incoming.headers['content-type'] ?? '');
  const extra: [string, string][] = type.startsWith('application/json')
    ? Object.entries((parseJsonBody(text) ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)])
    : [...new URLSearchParams(text)];
  for (const [key, value] of extra) params.set(key, value);
  return params;
}

function presentedToken(exchange: UploadExchange, params: URLSearchParams): string | null {
  const header = exchange.incoming.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return header.slice(7).trim();
  return params.get('access_token');
}

/** Scripted faults, then the token ([GE] 190 with HTTP 400), the account the path names, the scope. */
async function admit(
  exchange: UploadExchange,
  context: UploadContext,
  route: UploadRouteKind,
): Promise<{ token: AccessTokenRecord; params: URLSearchParams } | null> {
  const params = await readParams(exchange);
  const action = context.uploads.next('instagram', route, true);
  const token = context.state.validAccessToken('instagram', presentedToken(exchange, params));
  if (action.kind === 'fail') {
    const message = 'An unexpected error has occurred. Please retry your request later.';
    respond(exchange.outgoing, graphError(2, message, undefined, action.status));
    return null;
  }
  if (action.kind === 'unauthorized' || token === null) {
    respond(exchange.outgoing, invalidToken());
    return null;
  }
  return { token, params };
}

async function createContainer(
  exchange: UploadExchange,
  context: UploadContext,
  igId: string,
): Promise<void> {
  const admitted = await admit(exchange, context, 'init');
  if (admitted === null) return;
  const { token, params } = admitted;
  const reply = (response: SimResponse) => respond(exchange.outgoing, response);
  if (igId !== token.externalAccountId) {
    return reply(graphError(100, `Unsupported post request. Object with ID '${igId}' does not exist.`, 33));
  }
  if (!token.scopes.includes(PUBLISH_SCOPE)) {
    return reply(graphError(10, 'Application does not have permission for this action', undefined, 403));
  }
  // [CP] Reels: media_type=REELS (VIDEO for feed videos was retired in favour of REELS).
  if (params.get('media_type') !== 'REELS')
    return reply(graphError(100, 'The parameter media_type must be REELS.'));
  const videoUrl = params.get('video_url');
  if (videoUrl === null || !/^https?:\/\//.test(videoUrl)) {
    return reply(graphError(100, 'The parameter video_url is required and must be a public URL.'));
  }
  // [CP] caption: at most 2,200 characters.
  const caption = params.get('caption') ?? '';
  if (caption.length > 2200) return reply(graphError(100, 'The caption is longer than 2200 characters.'));

  const details: InstagramContainer = {
    videoUrl,
    caption,
    fetched: null,
    looksAfterFetch: 0,
    publishedMediaId: null,
    permalink: null,
  };
  const upload = context.uploads.createUpload(
    'instagram',
    token.externalAccountId,
    0,
    details as unknown as Record<string, unknown>,
    graphId(),
  );
  // [CP] "We cURL media used in publishing attempts": the simulator downloads video_url for real,
  // streaming and hashing it, so the bytes that reach "Meta" can be compared with the file.
  void download(upload);
  reply(json(200, { id: upload.id }));
}

async function download(upload: SimUpload): Promise<void> {
  const c = container(upload);
  try {
    upload.byteRequests += 1;
    const answer = await request(c.videoUrl, { method: 'GET', headersTimeout: 30_000, bodyTimeout: 30_000 });
    if (answer.statusCode !== 200) {
      await answer.body.dump();
      c.fetched = 'failed';
      return;
    }
    for await (const chunk of answer.body) {
      upload.hash.update(chunk as Buffer);
      upload.storedBytes += (chunk as Buffer).length;
      upload.receivedBytes += (chunk as Buffer).length;
    }
    upload.totalBytes = upload.storedBytes;
    upload.sha256 = upload.hash.digest('hex');
    c.fetched = upload.storedBytes > 0 ? 'ok' : 'failed';
  } catch {
    c.fetched = 'failed';
  }
}

function statusCode(upload: SimUpload, context: UploadContext): string {
  const c = container(upload);
  if (c.publishedMediaId !== null) return 'PUBLISHED';
  // [CP] "EXPIRED — The container was not published within 24 hours and has expired."
  if (context.state.now() - upload.createdAtMs >= CONTAINER_LIFETIME_MS) return 'EXPIRED';
  if (c.fetched === 'failed') return 'ERROR';
  if (c.fetched === null || context.uploads.faults('instagram').stuckProcessing === true)
    return 'IN_PROGRESS';
  return c.looksAfterFetch > context.uploads.settings.instagram.processingLooks ? 'FINISHED' : 'IN_PROGRESS';
}

async function readContainer(exchange: UploadExchange, context: UploadContext, id: string): Promise<void> {
  const admitted = await admit(exchange, context, 'status');
  if (admitted === null) return;
  const upload = context.uploads.upload('instagram', id);
  if (upload === undefined || upload.externalAccountId !== admitted.token.externalAccountId) {
    return respond(
      exchange.outgoing,
      graphError(100, `Unsupported get request. Object with ID '${id}' does not exist.`, 33),
    );
  }
  const c = container(upload);
  if (c.fetched !== null) c.looksAfterFetch += 1;
  const code = statusCode(upload, context);
  const fields = (admitted.params.get('fields') ?? 'id').split(',');
  const all: Record<string, string> = {
    id: upload.id,
    status_code: code,
    status:
      code === 'ERROR'
        ? 'Error: Media download has failed. (2207052)'
        : code === 'FINISHED'
          ? 'Finished: Media has been uploaded and it is ready to be published.'
          : code,
  };
  respond(
    exchange.outgoing,
    json(200, Object.fromEntries(Object.entries(all).filter(([k]) => fields.includes(k) || k === 'id'))),
  );
}

function usage(context: UploadContext, externalAccountId: string): number {
  const since = context.state.now() - 86_400_000;
  return context.uploads.posts('instagram', externalAccountId).filter((post) => post.createdAtMs > since)
    .length;
}

async function publishingLimit(
  exchange: UploadExchange,
  context: UploadContext,
  igId: string,
): Promise<void> {
  const admitted = await admit(exchange, context, 'limit');
  if (admitted === null) return;
  const total = context.uploads.settings.instagram.quotaTotal;
  const used = context.uploads.faults('instagram').quotaExhausted === true ? total : usage(context, igId);
  // [CP] "Publishing limit": a rolling 24-hour window; read it live (the docs give 100 and 50).
  respond(
    exchange.outgoing,
    json(200, { data: [{ config: { quota_total: total, quota_duration: 86_400 }, quota_usage: used }] }),
  );
}

async function publish(exchange: UploadExchange, context: UploadContext, igId: string): Promise<void> {
  const admitted = await admit(exchange, context, 'publish');
  if (admitted === null) return;
  const reply = (response: SimResponse) => respond(exchange.outgoing, response);
  if (igId !== admitted.token.externalAccountId) {
    return reply(graphError(100, `Unsupported post request. Object with ID '${igId}' does not exist.`, 33));
  }
  const upload = context.uploads.upload('instagram', admitted.params.get('creation_id'));
  if (upload === undefined || upload.externalAccountId !== igId) {
    return reply(graphError(100, 'The parameter creation_id is invalid.', 33));
  }
  const c = container(upload);
  // Not documented: publishing a container twice. The simulator refuses it (code 100) and never
  // creates a second post; our client reads status_code first and never sends this.
  if (c.publishedMediaId !== null) return reply(graphError(100, 'The media has already been published.'));
  const total = context.uploads.settings.instagram.quotaTotal;
  const faults = context.uploads.faults('instagram');
  // [EC] 9 / 2207042: the account reached its publishing limit for the 24-hour window.
  if (faults.quotaExhausted === true || usage(context, igId) >= total) {
    return reply(
      graphError(9, 'You reached the maximum number of posts that is allowed to be published.', 2207042, 403),
    );
  }
  // [CP]/[EC] publishing before FINISHED: 9007 / 2207027 "Media ID is not available".
  if (statusCode(upload, context) !== 'FINISHED') {
    return reply(graphError(9007, 'Media ID is not available', 2207027));
  }
  c.publishedMediaId = graphId();
  // A reel's public page, as Instagram shapes it: instagram.com/reel/<11-character shortcode>/.
  c.permalink = `https://www.instagram.com/reel/${randomBytes(8).toString('base64url').slice(0, 11)}/`;
  context.uploads.recordPost({
    provider: 'instagram',
    externalAccountId: igId,
    postId: c.publishedMediaId,
    uploadId: upload.id,
  });
  reply(json(200, { id: c.publishedMediaId }));
}

/** [IM] GET /<IG_MEDIA_ID>?fields=…: a published media's fields, `permalink` among them. */
async function readMedia(exchange: UploadExchange, context: UploadContext, mediaId: string): Promise<void> {
  const admitted = await admit(exchange, context, 'post');
  if (admitted === null) return;
  const post = context.uploads.posts('instagram').find((p) => p.postId === mediaId);
  const upload = post === undefined ? undefined : context.uploads.upload('instagram', post.uploadId);
  // [IM] "returns only data for media owned by Instagram professional accounts": the token's own.
  if (
    post === undefined ||
    upload === undefined ||
    post.externalAccountId !== admitted.token.externalAccountId
  ) {
    return respond(
      exchange.outgoing,
      graphError(100, `Unsupported get request. Object with ID '${mediaId}' does not exist.`, 33),
    );
  }
  const c = container(upload);
  const all: Record<string, string> = {
    id: mediaId,
    media_type: 'VIDEO',
    media_product_type: 'REELS',
    caption: c.caption,
    // Omitted for media flagged for copyright (Basic Display "Media" reference, `permalink`).
    ...(c.permalink === null || context.uploads.settings.instagram.copyrightFlagged
      ? {}
      : { permalink: c.permalink }),
    timestamp: new Date(post.createdAtMs).toISOString().replace(/\.\d{3}Z$/, '+0000'),
  };
  const fields = (admitted.params.get('fields') ?? 'id').split(',');
  respond(
    exchange.outgoing,
    json(200, Object.fromEntries(Object.entries(all).filter(([k]) => fields.includes(k) || k === 'id'))),
  );
}

const isPublishedMedia = (context: UploadContext, id: string) =>
  context.uploads.posts('instagram').some((post) => post.postId === id);

export const instagramUploadRoutes: UploadRoutes = {
  provider: 'instagram',
  matches(method, path) {
    const match = PATH.exec(path);
    if (match === null) return false;
    const edge = match[2];
    if (edge === 'media' || edge === 'media_publish') return method === 'POST';
    return method === 'GET';
  },
  async handle(exchange, context) {
    const [, id = '', edge] = PATH.exec(exchange.path) ?? [];
    if (edge === 'media') return createContainer(exchange, context, id);
    if (edge === 'media_publish') return publish(exchange, context, id);
    if (edge === 'content_publishing_limit') return publishingLimit(exchange, context, id);
    if (isPublishedMedia(context, id)) return readMedia(exchange, context, id);
    return readContainer(exchange, context, id);
  },
};
