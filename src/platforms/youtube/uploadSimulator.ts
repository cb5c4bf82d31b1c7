import { randomBytes } from 'node:crypto';
import type { SimulatorState } from '../../simulator/state.js';
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
import { pacificDayStart } from './quotaReset.js';

/**
 * YouTube Data API v3 `videos.insert` with the resumable upload protocol, and `videos.list` for
 * processing, as documented in:
 * - [RU] "YouTube Data API - Resumable Uploads" (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol):
 *   Step 1 (session), Step 3 (upload), Step 4 (check status, process the response, resume),
 *   "Uploading a file in chunks".
 * - [VI] videos.insert reference (developers.google.com/youtube/v3/docs/videos/insert): scopes, errors.
 * - [QU] Quota (developers.google.com/youtube/v3/determine_quota_cost; 2026-06 granular quota): uploads
 *   have their own daily bucket (default 100 videos.insert calls), reset at midnight Pacific.
 * - [VL] videos.list reference, `status.uploadStatus` and `processingDetails.processingStatus`.
 */

const INSERT = '/upload/youtube/v3/videos';
const VIDEOS = '/youtube/v3/videos';
/** [RU] "Uploading a file in chunks": every chunk but the last is a multiple of 256 KiB. */
const CHUNK_GRANULE = 256 * 1024;
/** [VI] "Authorization": any of these scopes may call videos.insert. */
const UPLOAD_SCOPES = [
  'https://www.googleapis.com/auth/youtube.upload',
  'https://www.googleapis.com/auth/youtube',
  'https://www.googleapis.com/auth/youtube.force-ssl',
];

interface YouTubeSession {
  contentType: string;
  snippet: { title: string; description: string };
  privacyStatus: string;
  videoId: string | null;
  /** A test expired the session (Google keeps them about a week; the simulator only on request). */
  expired: boolean;
  processingLooks: number;
}

function apiError(status: number, reason: string, message: string, domain = 'global'): SimResponse {
  return json(
    status,
    { error: { code: status, message, errors: [{ message, domain, reason }] } },
    status === 401
      ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' }
      : undefined,
  );
}

const unauthorized = () =>
  apiError(401, 'authError', 'Request had invalid authentication credentials.', 'global');

function session(upload: SimUpload): YouTubeSession {
  return upload.details as unknown as YouTubeSession;
}

function videoResource(upload: SimUpload, uploadStatus: string, processingStatus?: string) {
  const s = session(upload);
  return {
    kind: 'youtube#video',
    id: s.videoId,
    snippet: { title: s.snippet.title, description: s.snippet.description },
    status: { uploadStatus, privacyStatus: s.privacyStatus },
    ...(processingStatus === undefined ? {} : { processingDetails: { processingStatus } }),
  };
}

function bearer(exchange: UploadExchange): string | null {
  const header = exchange.incoming.headers.authorization;
  return typeof header === 'string' && /^bearer /i.test(header) ? header.slice(7).trim() : null;
}

function tokenOwner(state: SimulatorState, exchange: UploadExchange) {
  return state.validAccessToken('youtube', bearer(exchange));
}

/** A fault the test scripted, answered the YouTube way; the body is drained first. */
async function faulted(
  exchange: UploadExchange,
  context: UploadContext,
  route: UploadRouteKind,
): Promise<boolean> {
  const action = context.uploads.next('youtube', route, true);
  if (action.kind === 'none') return false;
  await drain(exchange.incoming);
  respond(
    exchange.outgoing,
    action.kind === 'unauthorized'
      ? unauthorized()
      : apiError(action.status, 'backendError', 'Backend Error'),
  );
  return true;
}

async function startSession(exchange: UploadExchange, context: UploadContext): Promise<void> {
  const settings = context.uploads.settings.youtube;
  if (await faulted(exchange, context, 'init')) return;
  const body = parseJsonBody(await readSmallBody(exchange.incoming)) as
    | { snippet?: { title?: unknown; description?: unknown }; status?: { privacyStatus?: unknown } }
    | undefined;
  const token = tokenOwner(context.state, exchange);
  if (token === null) return respond(exchange.outgoing, unauthorized());
  if (!token.scopes.some((scope) => UPLOAD_SCOPES.includes(scope))) {
    return respond(
      exchange.outgoing,
      apiError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.'),
    );
  }
  // [RU] Step 1: the resumable protocol is uploadType=resumable; the simulator models only it.
  if (exchange.query.get('uploadType') !== 'resumable') {
    return respond(
      exchange.outgoing,
      apiError(400, 'badRequest', 'The simulator models only uploadType=resumable.'),
    );
  }
  // [RU] Step 1: X-Upload-Content-Length is "the number of bytes that will be uploaded".
  const length = Number(exchange.incoming.headers['x-upload-content-length']);
  if (!Number.isInteger(length) || length <= 0) {
    return respond(
      exchange.outgoing,
      apiError(400, 'badRequest', 'X-Upload-Content-Length must be the size of the video in bytes.'),
    );
  }
  // [RU] Step 1: "any video MIME type (video/*) or application/octet-stream".
  const contentType = String(exchange.incoming.headers['x-upload-content-type'] ?? '');
  if (!/^video\/[\w.+-]+$/i.test(contentType) && contentType !== 'application/octet-stream') {
    return respond(
      exchange.outgoing,
      apiError(400, 'badContent', 'X-Upload-Content-Type must be video/* or application/octet-stream.'),
    );
  }
  // [VI] errors: invalidTitle (missing, empty or over 100 characters), invalidDescription (over 5,000 bytes).
  const title = body?.snippet?.title;
  if (typeof title !== 'string' || title.trim() === '' || title.length > 100 || /[<>]/.test(title)) {
    return respond(
      exchange.outgoing,
      apiError(400, 'invalidTitle', 'The video title is invalid.', 'youtube.video'),
    );
  }
  const description = body?.snippet?.description ?? '';
  if (typeof description !== 'string' || Buffer.byteLength(description) > 5000 || /[<>]/.test(description)) {
    return respond(
      exchange.outgoing,
      apiError(400, 'invalidDescription', 'The video description is invalid.', 'youtube.video'),
    );
  }
  const privacyStatus = body?.status?.privacyStatus ?? 'private';
  if (typeof privacyStatus !== 'string' || !['public', 'unlisted', 'private'].includes(privacyStatus)) {
    return respond(
      exchange.outgoing,
      apiError(400, 'invalidVideoMetadata', 'status.privacyStatus is invalid.', 'youtube.video'),
    );
  }

  const faults = context.uploads.faults('youtube');
  // [VI] errors: uploadLimitExceeded (400, youtube.video): the channel's own daily cap.
  if (faults.refuseInit === 'uploadLimitExceeded') {
    return respond(
      exchange.outgoing,
      apiError(
        400,
        'uploadLimitExceeded',
        'The user has exceeded the number of videos they may upload.',
        'youtube.video',
      ),
    );
  }
  // [QU] quotaExceeded (403, youtube.quota) once the day's upload bucket is spent; the day is Pacific.
  const dayStart = pacificDayStart(context.state.now());
  const today = context.uploads.uploads('youtube').filter((upload) => upload.createdAtMs >= dayStart).length;
  if (faults.quotaExhausted === true || today >= settings.dailyUploads) {
    return respond(
      exchange.outgoing,
      apiError(
        403,
        'quotaExceeded',
        'The request cannot be completed because you have exceeded your quota.',
        'youtube.quota',
      ),
    );
  }

  const details: YouTubeSession = {
    contentType,
    snippet: { title, description },
    privacyStatus,
    videoId: null,
    expired: false,
    processingLooks: 0,
  };
  const upload = context.uploads.createUpload(
    'youtube',
    token.externalAccountId,
    length,
    details as unknown as Record<string, unknown>,
  );
  // [RU] Step 1 → Step 2: 200 OK, the session URI in Location (an absolute URL we use as given).
  const location = `${exchange.publicBase}${INSERT}?uploadType=resumable&upload_id=${upload.id}`;
  respond(exchange.outgoing, {
    kind: 'raw',
    status: 200,
    text: '',
    contentType: 'text/plain',
    headers: { location },
  });
}

function incomplete(upload: SimUpload): SimResponse {
  // [RU] Step 4.2: 308 Resume Incomplete; Range names the bytes stored, absent when none are.
  const headers: Record<string, string> =
    upload.storedBytes > 0 ? { range: `bytes=0-${upload.storedBytes - 1}` } : {};
  return { kind: 'raw', status: 308, text: '', contentType: 'text/plain', headers };
}

async function putBytes(exchange: UploadExchange, context: UploadContext): Promise<void> {
  const { uploads, state } = context;
  const upload = uploads.upload('youtube', exchange.query.get('upload_id'));
  const range = parseContentRange(exchange.incoming.headers['content-range']);
  const route: UploadRouteKind = range?.kind === 'probe' ? 'probe' : 'chunk';
  if (upload !== undefined && route === 'chunk') upload.byteRequests += 1;
  if (await faulted(exchange, context, route)) return;
  // [RU] Step 3 sends the access token with every PUT to the session URI.
  const token = tokenOwner(state, exchange);
  if (token === null) {
    if (upload !== undefined) upload.receivedBytes += await drain(exchange.incoming);
    else await drain(exchange.incoming);
    return respond(exchange.outgoing, unauthorized());
  }
  // A session that expired (or never was) is 404: Google's resumable sessions answer 404 once they
  // have lapsed and the upload must start again (the YouTube guide does not spell this out; Google's
  // storage team says so in googleapis/gcs-resumable-upload#16, and ../shared/PLATFORMS.md).
  if (
    upload === undefined ||
    session(upload).expired ||
    upload.externalAccountId !== token.externalAccountId
  ) {
    await drain(exchange.incoming);
    return respond(exchange.outgoing, apiError(404, 'notFound', 'Not Found'));
  }
  const s = session(upload);

  if (range?.kind === 'probe' || s.videoId !== null) {
    await drain(exchange.incoming);
    if (range !== null && range.total !== upload.totalBytes) {
      return respond(
        exchange.outgoing,
        apiError(400, 'badRequest', 'Content-Range total does not match the session.'),
      );
    }
    // [RU] Step 4.2: a finished upload answers with the video resource, never a second video.
    if (s.videoId !== null) return respond(exchange.outgoing, json(200, videoResource(upload, 'uploaded')));
    return respond(exchange.outgoing, incomplete(upload));
  }

  // [RU] Step 3: without Content-Range the body is the whole file in one request.
  const declared = Number(exchange.incoming.headers['content-length']);
  const first = range === null ? 0 : range.first;
  const last = range === null ? declared - 1 : range.last;
  const total = range === null ? upload.totalBytes : range.total;
  const refuse = async (message: string) => {
    upload.receivedBytes += await drain(exchange.incoming);
    respond(exchange.outgoing, apiError(400, 'badRequest', message));
  };
  if (total !== upload.totalBytes) return refuse('Content-Range total is not X-Upload-Content-Length.');
  if (!Number.isInteger(declared) || declared !== last - first + 1) {
    return refuse('Content-Length does not match Content-Range.');
  }
  // Not documented: a chunk that does not start at the next byte the server holds. The simulator
  // refuses it, so that a client resuming from its own count instead of the Range fails loudly.
  if (first !== upload.storedBytes) {
    return refuse(`Content-Range must start at byte ${upload.storedBytes}, the byte after the stored Range.`);
  }
  const isLast = last + 1 === upload.totalBytes;
  // [RU] "Uploading a file in chunks": every chunk but the last a multiple of 256 KiB (the answer to
  // a wrong one is not documented: the simulator's is 400).
  if (!isLast && declared % CHUNK_GRANULE !== 0) {
    return refuse('The chunk size must be a multiple of 256 KiB (262,144 bytes), except for the last chunk.');
  }

  const cutAt = uploads.takeCut('youtube', upload, last + 1);
  const streamed = await streamBody(
    exchange.incoming,
    (chunk) => {
      upload.hash.update(chunk);
      upload.storedBytes += chunk.length;
    },
    cutAt === null ? null : cutAt - first,
  );
  upload.receivedBytes += streamed.received;
  if (streamed.cut) return; // the client sees a reset; what arrived is stored, as [RU] Step 4 expects
  if (upload.storedBytes < upload.totalBytes) return respond(exchange.outgoing, incomplete(upload));

  // The last byte is in: the video exists. [RU] Step 4.2: 201 Created with the video resource.
  upload.sha256 = upload.hash.digest('hex');
  s.videoId = randomBytes(8).toString('base64url').slice(0, 11);
  uploads.recordPost({
    provider: 'youtube',
    externalAccountId: upload.externalAccountId,
    postId: s.videoId,
    uploadId: upload.id,
  });
  respond(exchange.outgoing, json(201, videoResource(upload, 'uploaded')));
}

async function listVideos(exchange: UploadExchange, context: UploadContext): Promise<void> {
  if (await faulted(exchange, context, 'status')) return;
  await drain(exchange.incoming);
  const token = tokenOwner(context.state, exchange);
  if (token === null) return respond(exchange.outgoing, unauthorized());
  const ids = (exchange.query.get('id') ?? '').split(',');
  const parts = (exchange.query.get('part') ?? '').split(',');
  const stuck = context.uploads.faults('youtube').stuckProcessing === true;
  const items = context.uploads
    .uploads('youtube')
    .filter((upload) => session(upload).videoId !== null && ids.includes(session(upload).videoId ?? ''))
    // [VL] processingDetails are visible to the video's owner only.
    .filter((upload) => upload.externalAccountId === token.externalAccountId)
    .map((upload) => {
      const s = session(upload);
      s.processingLooks += 1;
      const done = !stuck && s.processingLooks > context.uploads.settings.youtube.processingLooks;
      const resource = videoResource(
        upload,
        done ? 'processed' : 'uploaded',
        done ? 'succeeded' : 'processing',
      );
      return {
        kind: resource.kind,
        id: resource.id,
        ...(parts.includes('status') ? { status: resource.status } : {}),
        ...(parts.includes('processingDetails') ? { processingDetails: resource.processingDetails } : {}),
      };
    });
  respond(
    exchange.outgoing,
    json(200, { kind: 'youtube#videoListResponse', items, pageInfo: { totalResults: items.length } }),
  );
}

export const youtubeUploadRoutes: UploadRoutes = {
  provider: 'youtube',
  matches(method, path) {
    return (
      (path === INSERT && (method === 'POST' || method === 'PUT')) || (path === VIDEOS && method === 'GET')
    );
  },
  async handle(exchange, context) {
    if (exchange.path === VIDEOS) return listVideos(exchange, context);
    if (exchange.method === 'POST') return startSession(exchange, context);
    return putBytes(exchange, context);
  },
};

/** For tests: the session lapses, as Google's do after about a week. */
export function expireYouTubeSession(upload: SimUpload): void {
  session(upload).expired = true;
}
