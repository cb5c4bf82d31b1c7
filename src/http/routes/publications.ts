import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PUBLICATION_STATUSES, type Publication, type PublicationStatus } from '../../domain/publication.js';
import { MediaTooLarge, type MediaWriter } from '../../service/publications/media.js';
import { MEDIA_LINK_PATH, type MediaLinks } from '../../service/publications/mediaLinks.js';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { boundaryOf, MultipartError, type PartSink, readMultipart } from '../multipart.js';
import { containsNul } from '../nulText.js';
import { accountIdParams, providerSchema } from '../schemas.js';
import { apiKeyAuth } from '../security.js';

const isoOrNull = { type: ['string', 'null'], format: 'date-time' } as const;

export const publicationSchema = {
  type: 'object',
  required: [
    'id',
    'account_id',
    'provider',
    'status',
    'bytes_sent',
    'total_bytes',
    'platform_post_id',
    'error',
    'created_at',
    'updated_at',
  ],
  properties: {
    id: { type: 'string' },
    account_id: { type: 'string' },
    provider: providerSchema,
    status: { type: 'string', enum: [...PUBLICATION_STATUSES] },
    title: { type: 'string' },
    bytes_sent: { type: 'integer' },
    total_bytes: { type: ['integer', 'null'] },
    platform_post_id: {
      type: ['string', 'null'],
      description:
        "The YouTube video id, the Instagram media id, TikTok's public post id (null while TikTok gives none, e.g. for SELF_ONLY).",
    },
    platform_ref: {
      type: ['string', 'null'],
      description:
        "The platform's handle while there is no post id: TikTok's publish_id, Instagram's container id.",
    },
    url: {
      type: ['string', 'null'],
      description:
        "The post's public page: YouTube's watch URL, Instagram's permalink (null when Meta gives none); null on TikTok.",
    },
    error: {
      type: ['object', 'null'],
      required: ['code', 'message'],
      properties: {
        code: {
          type: 'string',
          description: "The platform's error code (quotaExceeded, spam_risk_too_many_posts, …) or ours.",
        },
        message: { type: 'string' },
        retry_at: {
          ...isoOrNull,
          description: 'When a new try can succeed (YouTube quota: midnight Pacific).',
        },
      },
    },
    idempotency_key: { type: ['string', 'null'] },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    finished_at: isoOrNull,
  },
} as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toApiPublication(publication: Publication) {
  return {
    id: publication.id,
    account_id: publication.accountId,
    provider: publication.provider,
    status: publication.status,
    title: publication.request.title,
    bytes_sent: publication.bytesSent,
    total_bytes: publication.totalBytes,
    platform_post_id: publication.platformPostId,
    platform_ref: publication.platformRef,
    url: publication.url,
    error:
      publication.error === null
        ? null
        : {
            code: publication.error.code,
            message: publication.error.message,
            retry_at: iso(publication.error.retryAt),
          },
    idempotency_key: publication.idempotencyKey,
    created_at: new Date(publication.createdAt).toISOString(),
    updated_at: new Date(publication.updatedAt).toISOString(),
    finished_at: iso(publication.finishedAt),
  };
}

/** The metadata part of a multipart upload, or the JSON body with `source_url`. */
const metadataSchema = z.object({
  title: z.string().min(1).max(5_000),
  description: z.string().max(10_000).nullish(),
  privacy: z.string().min(1).max(64).nullish(),
  mode: z.enum(['direct', 'inbox']).nullish(),
  content_type: z
    .string()
    .regex(/^video\/[\w.+-]+$/)
    .nullish(),
  options: z.record(z.string(), z.unknown()).nullish(),
});
const jsonBodySchema = metadataSchema.extend({ source_url: z.string().min(1).max(4_000) });

const METADATA_LIMIT = 64 * 1024;
/** Room for the multipart framing and metadata beside the file, in a declared Content-Length. */
const FRAMING_ALLOWANCE = METADATA_LIMIT + 16 * 1024;

const publicationResponse = {
  type: 'object',
  required: ['publication'],
  properties: { publication: publicationSchema },
} as const;

const metadataOpenApi = {
  type: 'object',
  required: ['title'],
  properties: {
    title: {
      type: 'string',
      description: 'The title (YouTube); on Instagram and TikTok the caption starts with it.',
    },
    description: { type: ['string', 'null'] },
    privacy: { type: ['string', 'null'], description: 'TikTok privacy_level, YouTube privacyStatus.' },
    mode: {
      type: ['string', 'null'],
      enum: ['direct', 'inbox', null],
      description: 'TikTok: direct post or inbox.',
    },
    content_type: { type: ['string', 'null'] },
    options: { type: ['object', 'null'], additionalProperties: true, description: 'Platform options.' },
  },
} as const;

function encodeCursor(publication: Publication): string {
  return Buffer.from(`${publication.createdAt}:${publication.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^(\d{1,16}):(.{1,100})$/.exec(text);
  if (!match) throw new HttpError('invalid_request', 'cursor is not one this API gave');
  return { createdAt: Number(match[1]), id: match[2]! };
}

function describeZod(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ');
}

/**
 * The publications API (issue 13): create from a streamed multipart upload or a source URL,
 * idempotent per account; read one; list.
 */
export const publicationsRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (
  fastify,
  { context },
) => {
  const requireApiKey = apiKeyAuth(context.apiKeys);
  const service = context.oauth.publications;

  // The raw request stream: the route reads it part by part, straight to MEDIA_DIR.
  fastify.addContentTypeParser('multipart/form-data', (_request, payload, done) => done(null, payload));

  fastify.post<{ Params: { id: string } }>(
    '/v1/accounts/:id/publications',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'createPublication',
        summary: 'Publish a video to the account: a streamed upload, or a URL to fetch it from',
        description:
          '`multipart/form-data` with a `file` part (the video, streamed to MEDIA_DIR, never held in memory) and a ' +
          '`metadata` part (JSON), or JSON with `source_url`. Answers 202 at once; a worker uploads it. With ' +
          '`Idempotency-Key`, a repeat (even a concurrent one) answers 200 with the first publication. Larger than ' +
          'PUBLISH_MAX_BYTES: 413, nothing stored.',
        tags: ['publications'],
        params: accountIdParams,
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } },
        },
        openapiRequestBody: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              required: ['file', 'metadata'],
              properties: {
                file: { type: 'string', format: 'binary' },
                metadata: metadataOpenApi,
              },
            },
          },
          'application/json': {
            schema: {
              ...metadataOpenApi,
              required: ['source_url', 'title'],
              properties: { source_url: { type: 'string', format: 'uri' }, ...metadataOpenApi.properties },
            },
          },
        },
        response: {
          200: publicationResponse,
          202: publicationResponse,
          ...errorResponses(400, 401, 404, 409, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const accountId = request.params.id;
      const header = request.headers['idempotency-key'];
      const idempotencyKey = typeof header === 'string' ? header : null;
      // Before a byte of the body is read: unknown account, dead grant, or a repeat.
      const existing = await service.precheck(accountId, idempotencyKey);
      if (existing) return reply.status(200).send({ publication: toApiPublication(existing) });

      const contentType = request.headers['content-type'] ?? '';
      if (/^multipart\/form-data/i.test(contentType)) {
        const created = await receiveMultipart(request, reply, accountId, idempotencyKey);
        return reply
          .status(created.created ? 202 : 200)
          .send({ publication: toApiPublication(created.publication) });
      }
      if (!/^application\/json/i.test(contentType)) {
        throw new HttpError(
          'unsupported_media_type',
          'Send multipart/form-data (file + metadata) or JSON with source_url',
        );
      }
      const parsed = jsonBodySchema.safeParse(request.body);
      if (!parsed.success) throw new HttpError('invalid_request', describeZod(parsed.error));
      const body = parsed.data;
      const created = await createOrMap(() =>
        service.create({
          accountId,
          idempotencyKey,
          title: body.title,
          description: body.description,
          privacy: body.privacy,
          mode: body.mode,
          options: body.options ?? {},
          contentType: body.content_type,
          media: { kind: 'source_url', url: body.source_url },
        }),
      );
      return reply
        .status(created.created ? 202 : 200)
        .send({ publication: toApiPublication(created.publication) });
    },
  );

  /** Streams the file part to MEDIA_DIR and reads the metadata part, then creates the publication. */
  async function receiveMultipart(
    request: FastifyRequest,
    reply: FastifyReply,
    accountId: string,
    idempotencyKey: string | null,
  ) {
    const { maxBytes } = service.settings;
    const boundary = boundaryOf(request.headers['content-type']);
    if (boundary === null) throw new HttpError('invalid_request', 'multipart/form-data needs a boundary');
    const declared = Number(request.headers['content-length'] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > maxBytes + FRAMING_ALLOWANCE) {
      reply.header('connection', 'close');
      throw new HttpError('payload_too_large', new MediaTooLarge(maxBytes).message);
    }
    const id = `pub_${randomUUID()}`;
    let writer: MediaWriter | null = null;
    let fileType: string | null = null;
    let metadataText = '';
    // Parts arrive in chunks cut at any byte: a character split between two must not become U+FFFD.
    const metadataDecoder = new StringDecoder('utf8');
    try {
      await readMultipart(request.body as IncomingMessage, boundary, async (part): Promise<PartSink> => {
        if (part.name === 'file') {
          if (writer !== null) throw new MultipartError('only one file part');
          fileType = part.contentType;
          const current = await service.media.createWriter(id, maxBytes);
          writer = current;
          return { write: (chunk) => current.write(chunk), end: () => {} };
        }
        if (part.name === 'metadata') {
          return {
            write(chunk) {
              metadataText += metadataDecoder.write(chunk);
              if (metadataText.length > METADATA_LIMIT)
                throw new MultipartError('the metadata part is too large');
            },
            end() {
              metadataText += metadataDecoder.end();
            },
          };
        }
        // Unknown parts are read past, not kept.
        return { write() {}, end() {} };
      });
      if (writer === null) throw new HttpError('invalid_request', 'The upload has no `file` part');
      let metadata: unknown;
      try {
        metadata = JSON.parse(metadataText || 'null');
      } catch {
        throw new HttpError('invalid_request', 'The `metadata` part is not JSON');
      }
      // PostgreSQL refuses U+0000 in text (the JSON body is checked by the app's preValidation hook).
      if (containsNul(metadata, { keys: true })) {
        throw new HttpError('invalid_request', 'Text must not contain NUL characters');
      }
      const parsed = metadataSchema.safeParse(metadata);
      if (!parsed.success) throw new HttpError('invalid_request', `metadata: ${describeZod(parsed.error)}`);
      const path = await (writer as MediaWriter).finish();
      const body = parsed.data;
      const mediaType = fileType as string | null;
      return await createOrMap(() =>
        service.create({
          id,
          accountId,
          idempotencyKey,
          title: body.title,
          description: body.description,
          privacy: body.privacy,
          mode: body.mode,
          options: body.options ?? {},
          contentType: body.content_type ?? (mediaType && /^video\//.test(mediaType) ? mediaType : null),
          media: { kind: 'file', path, owned: true },
        }),
      );
    } catch (error) {
      await (writer as MediaWriter | null)?.abort();
      if (error instanceof MediaTooLarge) {
        // The rest of the body is not read: the connection closes after the answer.
        reply.header('connection', 'close');
        throw new HttpError('payload_too_large', error.message);
      }
      if (error instanceof MultipartError) throw new HttpError('invalid_request', error.message);
      throw error;
    }
  }

  fastify.get<{ Params: { id: string } }>(
    '/v1/publications/:id',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'getPublication',
        summary: 'A publication: status, bytes sent, the platform post id, the error',
        tags: ['publications'],
        params: accountIdParams,
        response: { 200: publicationResponse, ...errorResponses(401, 404) },
      },
    },
    async (request) => {
      const publication = await service.get(request.params.id);
      if (!publication) throw new HttpError('publication_not_found', `No publication ${request.params.id}`);
      return { publication: toApiPublication(publication) };
    },
  );

  fastify.get<{
    Querystring: { account_id?: string; status?: PublicationStatus; cursor?: string; limit?: number };
  }>(
    '/v1/publications',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'listPublications',
        summary: 'Publications, newest first',
        tags: ['publications'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            account_id: { type: 'string', minLength: 1, maxLength: 100 },
            status: { type: 'string', enum: [...PUBLICATION_STATUSES] },
            cursor: { type: 'string', maxLength: 200, description: 'next_cursor of the previous page' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['publications', 'next_cursor'],
            properties: {
              publications: { type: 'array', items: publicationSchema },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const page = await service.list({
        accountId: request.query.account_id,
        status: request.query.status,
        before: request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor),
        limit,
      });
      return {
        publications: page.map(toApiPublication),
        next_cursor: page.length === limit ? encodeCursor(page.at(-1)!) : null,
      };
    },
  );
};

/** Service failures about the media become API errors. */
async function createOrMap<T>(create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (error) {
    if (error instanceof MediaTooLarge) throw new HttpError('payload_too_large', error.message);
    throw error;
  }
}

/**
 * GET /media/:token: a file of ours at an unguessable, expiring link, for a platform that fetches
 * the video itself (Instagram's `video_url`). No API key (Meta's fetcher has none); the token is the
 * capability, and it is redacted from logs. Range requests are answered, as CDNs and fetchers use them.
 */
export const mediaLinkRoutes: FastifyPluginAsync<{ mediaLinks: MediaLinks }> = async (
  fastify,
  { mediaLinks },
) => {
  fastify.route<{ Params: { token: string } }>({
    method: ['GET', 'HEAD'],
    url: `${MEDIA_LINK_PATH}:token`,
    schema: {
      hide: true,
      params: { type: 'object', properties: { token: { type: 'string', maxLength: 100 } } },
    },
    handler: async (request, reply) => {
      const range = request.headers.range;
      const answer = await mediaLinks.answer(
        request.params.token,
        typeof range === 'string' ? range : undefined,
      );
      if (answer.kind === 'not_found')
        throw new HttpError('not_found', 'No such media (or the link has expired)');
      reply.header('accept-ranges', 'bytes');
      if (answer.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${answer.size}`);
        return reply
          .status(416)
          .type('application/json')
          .send({
            error: { code: 'invalid_request', message: 'Range not satisfiable', request_id: request.id },
          });
      }
      reply
        .status(answer.status)
        .type(answer.contentType)
        .header('content-length', String(answer.end - answer.start));
      if (answer.status === 206)
        reply.header('content-range', `bytes ${answer.start}-${answer.end - 1}/${answer.size}`);
      if (request.method === 'HEAD') return reply.send();
      return reply.send(answer.open());
    },
  });
};
