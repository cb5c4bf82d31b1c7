import type { FastifyPluginAsync } from 'fastify';
import { OAUTH_EVENT_TYPES, type OAuthEventType } from '../../domain/ledger.js';
import type { HttpContext } from '../context.js';
import { errorResponses } from '../errorCatalog.js';
import { eventSchema, toApiEvent } from '../schemas.js';
import { apiKeyAuth } from '../security.js';

/** The OAuth ledger, oldest first, a page at a time. */
export const eventsRoutes: FastifyPluginAsync<{ context: HttpContext }> = async (fastify, { context }) => {
  const requireApiKey = apiKeyAuth(context.apiKeys);

  fastify.get<{
    Querystring: { account_id?: string; type?: OAuthEventType; cursor?: string; limit?: number };
  }>(
    '/v1/events',
    {
      onRequest: requireApiKey,
      schema: {
        operationId: 'listEvents',
        summary: 'The OAuth ledger (connected, refreshed, refresh_failed, needs_reauth, revoked, …)',
        tags: ['events'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            account_id: { type: 'string', maxLength: 100 },
            type: { type: 'string', enum: [...OAUTH_EVENT_TYPES] },
            cursor: {
              type: 'string',
              pattern: '^[0-9]{1,15}$',
              description: 'next_cursor of the previous page',
            },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['events', 'next_cursor'],
            properties: {
              events: { type: 'array', items: eventSchema },
              next_cursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const page = await context.oauth.ledger.list({
        accountId: request.query.account_id,
        type: request.query.type,
        afterSeq: request.query.cursor === undefined ? undefined : Number(request.query.cursor),
        limit: request.query.limit ?? 50,
      });
      return {
        events: page.events.map(toApiEvent),
        next_cursor: page.nextCursor === null ? null : String(page.nextCursor),
      };
    },
  );
};
