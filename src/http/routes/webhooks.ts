import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { randomOpaqueToken } from '../../crypto/opaqueToken.js';
import type { ProviderName } from '../../domain/providerName.js';
import type { RemovalReason } from '../../service/platformRemovals.js';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { sendMessagePage } from '../portal/layout.js';
import { verifyMetaSignedRequest, verifyTikTokSignature } from '../webhookSignatures.js';

const tiktokEventSchema = z.object({
  client_key: z.string(),
  event: z.string(),
  create_time: z.number().int(),
  user_openid: z
    .string()
    .min(1)
    .regex(/^[^\u0000]*$/),
  content: z.string().optional(),
});

const signedRequestBody = {
  type: 'object',
  required: ['signed_request'],
  properties: { signed_request: { type: 'string', minLength: 3, maxLength: 8192 } },
} as const;

/**
 * Platforms telling us a user removed our app. Each verifies the platform's signature before
 * reading anything, answers 401 to a bad one, and is idempotent (platforms retry for days).
 */
export const webhookRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (fastify, { context }) => {
  const { oauth, config } = context;

  // TikTok signs the raw bytes: this scope keeps JSON bodies as text, parsed after verification.
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    done(null, { raw: body as string });
  });

  const secretFor = (provider: ProviderName): string => {
    const secret = config.providers[provider]?.clientSecret;
    if (!secret)
      throw new HttpError('provider_not_configured', `${provider} is not configured on this service`);
    return secret;
  };

  // Finding the account, the grant check and the revocation are the service's (PlatformRemovals).
  const revokeFromPlatform = async (
    provider: ProviderName,
    externalId: string,
    reason: RemovalReason,
    eventTimeMs: number | null,
    detail: Record<string, unknown>,
  ): Promise<void> => {
    await oauth.removals.removed(provider, externalId, reason, eventTimeMs, detail);
  };

  const revokeInstagram = async (
    userId: string,
    reason: RemovalReason,
    eventTimeMs: number | null,
    detail: Record<string, unknown>,
  ): Promise<void> => {
    await oauth.removals.removedByAnyId('instagram', userId, reason, eventTimeMs, detail);
  };

  const metaPayload = (signedRequest: string) => {
    const payload = verifyMetaSignedRequest(signedRequest, secretFor('instagram'));
    if (!payload) throw new HttpError('invalid_signature', 'signed_request signature is not valid');
    return payload;
  };

  fastify.post<{ Body: { signed_request: string } }>(
    '/webhooks/instagram/deauthorize',
    {
      schema: {
        operationId: 'instagramDeauthorize',
        summary: 'Meta deauthorize callback (signed_request, HMAC-SHA256 with the app secret)',
        tags: ['webhooks'],
        consumes: ['application/x-www-form-urlencoded'],
        body: signedRequestBody,
        response: { 200: { type: 'object' }, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const payload = metaPayload(request.body.signed_request);
      await revokeInstagram(payload.user_id, 'platform_deauthorized', issuedAtMs(payload.issued_at), {
        source: 'meta_deauthorize',
      });
      return {};
    },
  );

  fastify.post<{ Body: { signed_request: string } }>(
    '/webhooks/instagram/data-deletion',
    {
      schema: {
        operationId: 'instagramDataDeletion',
        summary: 'Meta data-deletion callback: tokens are deleted at once; answers {url, confirmation_code}',
        tags: ['webhooks'],
        consumes: ['application/x-www-form-urlencoded'],
        body: signedRequestBody,
        response: {
          200: {
            type: 'object',
            required: ['url', 'confirmation_code'],
            properties: { url: { type: 'string' }, confirmation_code: { type: 'string' } },
          },
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const payload = metaPayload(request.body.signed_request);
      const confirmationCode = randomOpaqueToken(12);
      await revokeInstagram(payload.user_id, 'data_deletion_request', issuedAtMs(payload.issued_at), {
        source: 'meta_data_deletion',
        confirmationCode,
      });
      return {
        url: `${config.http.publicBaseUrl}/webhooks/instagram/data-deletion/${confirmationCode}`,
        confirmation_code: confirmationCode,
      };
    },
  );

  // Where Meta sends the person who asked for deletion. Deletion is synchronous: it is done.
  fastify.get<{ Params: { code: string } }>(
    '/webhooks/instagram/data-deletion/:code',
    {
      schema: {
        hide: true,
        params: { type: 'object', properties: { code: { type: 'string', maxLength: 64 } } },
      },
    },
    async (_request, reply) =>
      sendMessagePage(reply, 200, {
        title: 'Your data was deleted',
        text: 'The Instagram access this service held for you has been deleted. Nothing else is pending.',
        tone: 'success',
      }),
  );

  fastify.post<{ Body: { raw: string } }>(
    '/webhooks/tiktok',
    {
      schema: {
        operationId: 'tiktokWebhook',
        summary: 'TikTok webhook events (TikTok-Signature); authorization.removed revokes the account',
        tags: ['webhooks'],
        response: { 200: { type: 'object' }, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const raw = typeof request.body?.raw === 'string' ? request.body.raw : '';
      const header = request.headers['tiktok-signature'];
      if (!verifyTikTokSignature(typeof header === 'string' ? header : undefined, raw, secretFor('tiktok'))) {
        throw new HttpError('invalid_signature', 'TikTok-Signature is not valid');
      }
      let event: z.output<typeof tiktokEventSchema>;
      try {
        event = tiktokEventSchema.parse(JSON.parse(raw));
      } catch {
        throw new HttpError('invalid_request', 'Not a TikTok event');
      }
      if (event.event === 'authorization.removed') {
        const reason = readRemovalReason(event.content);
        await revokeFromPlatform(
          'tiktok',
          event.user_openid,
          'platform_deauthorized',
          event.create_time * 1000,
          {
            source: 'tiktok_authorization_removed',
            tiktokReason: reason,
          },
        );
      }
      // Other events are acknowledged so that TikTok stops retrying them.
      return {};
    },
  );
};

function issuedAtMs(issuedAt: number | undefined): number | null {
  return issuedAt === undefined ? null : issuedAt * 1000;
}

/** `content` is a JSON string, `{"reason": 1}`: kept as a number when it is one. */
function readRemovalReason(content: string | undefined): number | null {
  if (!content) return null;
  try {
    const reason = (JSON.parse(content) as { reason?: unknown }).reason;
    return typeof reason === 'number' ? reason : null;
  } catch {
    return null;
  }
}
