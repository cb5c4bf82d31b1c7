import { randomBytes } from 'node:crypto';
import type { AccessTokenRecord } from '../../simulator/state.js';
import { traceId } from '../../simulator/state.js';
import {
  drain,
  parseContentRange,
  parseJsonBody,
  readSmallBody,
  respond,
  type SimUpload,
  streamBody,
  type UploadContext,
  type UploadExchange,
  type UploadRouteKind,
  type UploadRoutes,
} from '../../simulator/uploads.js';
import { json, type SimResponse } from '../../simulator/wire.js';
import { type ChunkPlan, checkChunkPlan } from './chunkPlan.js';

/**
 * TikTok Content Posting API, as documented in (developers.tiktok.com/doc/…):
 * - [DP] content-posting-api-reference-direct-post: creator_info/query (video.publish, 20/min per
 *   token), video/init (video.publish, 6/min per token), post_info (privacy_level one of the
 *   creator's privacy_level_options, title ≤ 2,200 UTF-16 units), the error table.
 * - [UP] content-posting-api-reference-upload-video: inbox/video/init (video.upload, 6/min).
 * - [MT] content-posting-api-media-transfer-guide: chunk restrictions, the PUT with Content-Range,
 *   206 for a chunk, 201 when the whole video is in; upload_url valid for one hour.
 * - [ST] content-posting-api-reference-get-video-status: status/fetch (30/min per token), statuses
 *   PROCESSING_UPLOAD, PROCESSING_DOWNLOAD, SEND_TO_USER_INBOX, PUBLISH_COMPLETE, FAILED,
 *   `publicaly_available_post_id` (sic), `uploaded_bytes`.
 * - [GS] content-posting-api-get-started: unaudited clients may post SELF_ONLY only.
 */

const CREATOR_INFO = '/v2/post/publish/creator_info/query/';
const DIRECT_INIT = '/v2/post/publish/video/init/';
const INBOX_INIT = '/v2/post/publish/inbox/video/init/';
const STATUS = '/v2/post/publish/status/fetch/';
/** Where upload_url points (TikTok's example: https://upload.us.tiktokapis.com/video/?upload_id=…&upload_token=…). */
const UPLOAD = '/video/';
const UPLOAD_URL_LIFETIME_MS = 3_600_000;
const DAY_MS = 86_400_000;

interface TikTokUpload {
  mode: 'direct' | 'inbox';
  privacyLevel: string | null;
  plan: ChunkPlan;
  uploadToken: string;
  /** Chunks received, in order. */
  nextChunk: number;
  /** status/fetch looks since the last chunk arrived. */
  looksAfterUpload: number;
  status: 'PROCESSING_UPLOAD' | 'PUBLISH_COMPLETE' | 'SEND_TO_USER_INBOX' | 'FAILED';
  postIds: string[];
}

function apiError(status: number, code: string, message: string): SimResponse {
  return json(status, { data: {}, error: { code, message, log_id: traceId() } });
}

function ok(data: unknown): SimResponse {
  return json(200, { data, error: { code: 'ok', message: '', log_id: traceId() } });
}

const tokenInvalid = () =>
  apiError(401, 'access_token_invalid', 'The access token is invalid or not found in the request.');

function details(upload: SimUpload): TikTokUpload {
  return upload.details as unknown as TikTokUpload;
}

function bearer(exchange: UploadExchange): string | null {
  const header = exchange.incoming.headers.authorization;
  return typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : null;
}

/**
 * The checks every token-carrying endpoint makes, in order: scripted faults, the token, the scope,
 * the per-token rate limit. Returns the token, or null once an error was answered.
 */
async function admit(
  exchange: UploadExchange,
  context: UploadContext,
  route: UploadRouteKind,
  scopes: readonly string[],
  perMinute: number,
): Promise<{ token: AccessTokenRecord; body: unknown } | null> {
  const action = context.uploads.next('tiktok', route, true);
  const body = parseJsonBody(await readSmallBody(exchange.incoming));
  if (action.kind === 'unauthorized') {
    respond(exchange.outgoing, tokenInvalid());
    return null;
  }
  if (action.kind === 'fail') {
    respond(exchange.outgoing, apiError(action.status, 'internal_error', 'Something went wrong.'));
    return null;
  }
  const tokenValue = bearer(exchange);
  const token = context.state.validAccessToken('tiktok', tokenValue);
  if (token === null) {
    respond(exchange.outgoing, tokenInvalid());
    return null;
  }
  if (!token.scopes.some((scope) => scopes.includes(scope))) {
    respond(
      exchange.outgoing,
      apiError(
        401,
        'scope_not_authorized',
        'The user did not authorize the scope required for this endpoint.',
      ),
    );
    return null;
  }
  if (context.uploads.overLimit(`tiktok\u0000${route}\u0000${tokenValue}`, perMinute)) {
    respond(
      exchange.outgoing,
      apiError(429, 'rate_limit_exceeded', 'API rate limit exceeded, please try again later.'),
    );
    return null;
  }
  return { token, body };
}

async function creatorInfo(exchange: UploadExchange, context: UploadContext): Promise<void> {
  // [DP] "Query creator information": video.publish, 20 requests per minute per token.
  const admitted = await admit(exchange, context, 'creator', ['video.publish'], 20);
  if (admitted === null) return;
  const account = context.state.account('tiktok', admitted.token.externalAccountId);
  respond(
    exchange.outgoing,
    ok({
      creator_avatar_url: 'https://p16-sign.tiktokcdn.com/sandbox-avatar.jpeg',
      creator_username: admitted.token.externalAccountId,
      creator_nickname: account?.displayName ?? '',
      privacy_level_options: context.uploads.settings.tiktok.privacyLevelOptions,
      comment_disabled: false,
      duet_disabled: false,
      stitch_disabled: false,
      max_video_post_duration_sec: 600,
    }),
  );
}

interface InitBody {
  post_info?: { title?: unknown; privacy_level?: unknown };
  source_info?: { source?: unknown; video_size?: unknown; chunk_size?: unknown; total_chunk_count?: unknown };
}

async function init(
  exchange: UploadExchange,
  context: UploadContext,
  mode: 'direct' | 'inbox',
): Promise<void> {
  // [DP]/[UP] "Each user access_token is limited to 6 requests per minute."
  const scope = mode === 'direct' ? 'video.publish' : 'video.upload';
  const admitted = await admit(exchange, context, 'init', [scope], 6);
  if (admitted === null) return;
  const { token } = admitted;
  const body = (admitted.body ?? {}) as InitBody;
  const faults = context.uploads.faults('tiktok');
  const settings = context.uploads.settings.tiktok;
  const reply = (response: SimResponse) => respond(exchange.outgoing, response);

  // [DP] error table: spam_risk_* and reached_active_user_cap are 403, final for this post.
  if (faults.quotaExhausted === true) {
    return reply(
      apiError(
        403,
        'spam_risk_too_many_posts',
        'The daily post cap from the API is reached for the current user.',
      ),
    );
  }
  if (faults.refuseInit !== undefined)
    return reply(apiError(403, faults.refuseInit, `Refused: ${faults.refuseInit}.`));

  const source = body.source_info;
  if (source?.source !== 'FILE_UPLOAD') {
    // PULL_FROM_URL needs a verified domain; the simulator models FILE_UPLOAD only.
    return reply(apiError(400, 'invalid_params', 'source_info.source must be FILE_UPLOAD in the simulator.'));
  }
  const plan: ChunkPlan = {
    videoSize: Number(source.video_size),
    chunkSize: Number(source.chunk_size),
    totalChunkCount: Number(source.total_chunk_count),
  };
  // [MT] Chunk restrictions. TikTok's words for a wrong plan (a public report since 2026-08): "The
  // chunk size is invalid"; the simulator adds which rule was broken.
  const broken = checkChunkPlan(plan);
  if (broken !== null) return reply(apiError(400, 'invalid_params', `The chunk size is invalid: ${broken}.`));

  let privacyLevel: string | null = null;
  if (mode === 'direct') {
    const info = body.post_info;
    privacyLevel = typeof info?.privacy_level === 'string' ? info.privacy_level : null;
    // [DP] post_info.privacy_level must be one of creator_info's privacy_level_options.
    if (privacyLevel === null || !settings.privacyLevelOptions.includes(privacyLevel)) {
      return reply(
        apiError(
          400,
          'privacy_level_option_mismatch',
          'privacy_level is not one of the privacy_level_options.',
        ),
      );
    }
    // [GS] "All content posted by unaudited clients will be restricted to private viewing mode."
    if (!settings.audited && privacyLevel !== 'SELF_ONLY') {
      return reply(
        apiError(
          403,
          'unaudited_client_can_only_post_to_private_accounts',
          'Unaudited clients can only post with SELF_ONLY.',
        ),
      );
    }
    // [DP] post_info.title: at most 2,200 UTF-16 code units (a JS string's length).
    if (typeof info?.title === 'string' && info.title.length > 2200) {
      return reply(apiError(400, 'invalid_params', 'post_info.title is longer than 2200 UTF-16 code units.'));
    }
  } else {
    // [UP] error table: spam_risk_too_many_pending_share, at most 5 pending shares per 24 hours.
    const pending = context.uploads
      .uploads('tiktok')
      .filter(
        (u) =>
          u.externalAccountId === token.externalAccountId &&
          details(u).mode === 'inbox' &&
          context.state.now() - u.createdAtMs < DAY_MS,
      ).length;
    if (pending >= 5) {
      return reply(
        apiError(403, 'spam_risk_too_many_pending_share', 'Too many pending shares in the last 24 hours.'),
      );
    }
  }

  const publishId = `v_${mode === 'direct' ? 'pub' : 'inbox'}_file~v2-1.${randomBytes(9).toString('hex')}`;
  const state: TikTokUpload = {
    mode,
    privacyLevel,
    plan,
    uploadToken: randomBytes(16).toString('base64url'),
    nextChunk: 0,
    looksAfterUpload: 0,
    status: 'PROCESSING_UPLOAD',
    postIds: [],
  };
  context.uploads.createUpload(
    'tiktok',
    token.externalAccountId,
    plan.videoSize,
    state as unknown as Record<string, unknown>,
    publishId,
  );
  const uploadUrl = `${exchange.publicBase}${UPLOAD}?upload_id=${encodeURIComponent(publishId)}&upload_token=${state.uploadToken}`;
  reply(ok({ publish_id: publishId, upload_url: uploadUrl }));
}

async function putChunk(exchange: UploadExchange, context: UploadContext): Promise<void> {
  const { uploads } = context;
  const upload = uploads.upload('tiktok', exchange.query.get('upload_id'));
  if (upload !== undefined) upload.byteRequests += 1;
  // The PUT to upload_url carries no access token: only 5xx faults apply here.
  const action = uploads.next('tiktok', 'chunk', false);
  const refuse = async (status: number, code: string, message: string) => {
    const drained = await drain(exchange.incoming);
    if (upload !== undefined) upload.receivedBytes += drained;
    respond(exchange.outgoing, apiError(status, code, message));
  };
  if (action.kind === 'fail') return refuse(action.status, 'internal_error', 'Something went wrong.');
  if (upload === undefined) return refuse(404, 'not_found', 'The upload does not exist.');
  const s = details(upload);
  if (exchange.query.get('upload_token') !== s.uploadToken)
    return refuse(403, 'forbidden', 'The upload token is invalid.');
  // [MT] / [DP]: upload_url is valid for one hour.
  if (context.state.now() - upload.createdAtMs >= UPLOAD_URL_LIFETIME_MS) {
    return refuse(403, 'forbidden', 'The upload URL has expired.');
  }
  const range = parseContentRange(exchange.incoming.headers['content-range']);
  if (range === null || range.kind !== 'range') {
    return refuse(400, 'invalid_params', 'Content-Range must be "bytes FIRST-LAST/TOTAL".');
  }
  const length = range.last - range.first + 1;
  if (Number(exchange.incoming.headers['content-length']) !== length) {
    return refuse(400, 'invalid_params', 'Content-Length must be the size of this chunk.');
  }
  const { plan } = s;
  const index = Math.floor(range.first / plan.chunkSize);
  const expectedEnd = index === plan.totalChunkCount - 1 ? plan.videoSize : (index + 1) * plan.chunkSize;
  const fitsPlan =
    range.total === plan.videoSize &&
    index < plan.totalChunkCount &&
    range.first === index * plan.chunkSize &&
    range.last + 1 === expectedEnd;
  // [MT] every chunk is chunk_size long but the last, which takes the trailing bytes. The guide lists
  // no status for a wrong range; the simulator answers 416 Range Not Satisfiable.
  if (!fitsPlan) {
    return refuse(
      416,
      'invalid_params',
      `Content-Range does not match chunk ${index} of the plan made at init.`,
    );
  }
  // Not documented: a chunk received before and sent again (its answer was lost). The simulator
  // takes it as a no-op and answers as it did, since TikTok gives no way to ask which chunks it holds
  // besides status/fetch's uploaded_bytes.
  if (index < s.nextChunk) {
    upload.receivedBytes += await drain(exchange.incoming);
    return respond(exchange.outgoing, chunkAnswer(s));
  }
  // [MT] "File chunks must be uploaded sequentially."
  if (index > s.nextChunk) {
    return refuse(416, 'invalid_params', `Chunks must be uploaded in order: chunk ${s.nextChunk} is next.`);
  }

  // A chunk counts whole or not at all: hash into a copy, adopted when the chunk is complete.
  const hash = upload.hash.copy();
  const cutAt = uploads.takeCut('tiktok', upload, range.last + 1);
  const streamed = await streamBody(
    exchange.incoming,
    (chunk) => hash.update(chunk),
    cutAt === null ? null : cutAt - range.first,
  );
  upload.receivedBytes += streamed.received;
  if (streamed.cut || streamed.received !== length) {
    if (!streamed.cut)
      respond(
        exchange.outgoing,
        apiError(400, 'invalid_params', 'The chunk is shorter than its Content-Range.'),
      );
    return;
  }
  upload.hash = hash;
  upload.storedBytes = range.last + 1;
  s.nextChunk += 1;
  if (s.nextChunk === plan.totalChunkCount) upload.sha256 = upload.hash.digest('hex');
  respond(exchange.outgoing, chunkAnswer(s));
}

/** [MT] 206 Partial Content after a chunk, 201 Created once all chunks are in. */
function chunkAnswer(s: TikTokUpload): SimResponse {
  const done = s.nextChunk === s.plan.totalChunkCount;
  return { kind: 'raw', status: done ? 201 : 206, text: '', contentType: 'text/plain' };
}

async function fetchStatus(exchange: UploadExchange, context: UploadContext): Promise<void> {
  // [ST] video.upload or video.publish; 30 requests per minute per token.
  const admitted = await admit(exchange, context, 'status', ['video.upload', 'video.publish'], 30);
  if (admitted === null) return;
  const publishId = (admitted.body as { publish_id?: unknown } | undefined)?.publish_id;
  const upload = context.uploads.upload('tiktok', typeof publishId === 'string' ? publishId : null);
  if (upload === undefined || upload.externalAccountId !== admitted.token.externalAccountId) {
    return respond(exchange.outgoing, apiError(400, 'invalid_params', 'publish_id does not exist.'));
  }
  const s = details(upload);
  const uploaded = s.nextChunk === s.plan.totalChunkCount;
  if (uploaded && s.status === 'PROCESSING_UPLOAD') {
    s.looksAfterUpload += 1;
    const settings = context.uploads.settings.tiktok;
    const stuck = context.uploads.faults('tiktok').stuckProcessing === true;
    if (!stuck && s.looksAfterUpload > settings.processingLooks) {
      // [ST] a direct post ends PUBLISH_COMPLETE; an inbox upload SEND_TO_USER_INBOX. Public posts
      // get their id after moderation; a SELF_ONLY post has none to give.
      s.status = s.mode === 'direct' ? 'PUBLISH_COMPLETE' : 'SEND_TO_USER_INBOX';
      const postId = String(7_000_000_000_000_000_000n + BigInt(`0x${randomBytes(6).toString('hex')}`));
      if (s.mode === 'direct' && s.privacyLevel !== 'SELF_ONLY') s.postIds = [postId];
      context.uploads.recordPost({
        provider: 'tiktok',
        externalAccountId: upload.externalAccountId,
        postId: s.mode === 'direct' ? postId : upload.id,
        uploadId: upload.id,
      });
    }
  }
  respond(
    exchange.outgoing,
    ok({
      status: s.status,
      ...(s.status === 'FAILED' ? { fail_reason: 'internal' } : {}),
      publicaly_available_post_id: s.postIds,
      uploaded_bytes: upload.storedBytes,
      downloaded_bytes: 0,
    }),
  );
}

export const tiktokUploadRoutes: UploadRoutes = {
  provider: 'tiktok',
  matches(method, path) {
    if (method === 'PUT') return path === UPLOAD;
    return method === 'POST' && [CREATOR_INFO, DIRECT_INIT, INBOX_INIT, STATUS].includes(path);
  },
  async handle(exchange, context) {
    switch (exchange.path) {
      case CREATOR_INFO:
        return creatorInfo(exchange, context);
      case DIRECT_INIT:
        return init(exchange, context, 'direct');
      case INBOX_INIT:
        return init(exchange, context, 'inbox');
      case STATUS:
        return fetchStatus(exchange, context);
      default:
        return putChunk(exchange, context);
    }
  },
};
