import type { FastifyPluginAsync } from 'fastify';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { buildOpenApiDocument, type CollectedRoute } from '../openapi.js';

export const API_VERSION = '1.0.0';

/** Health, metrics and the API description: unauthenticated, for load balancers and scrapers. */
export const healthRoutes: FastifyPluginAsync<{ context: HttpContext; routes: CollectedRoute[] }> = async (
  fastify,
  { context, routes },
) => {
  fastify.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness and database check',
        tags: ['operations'],
        response: {
          200: {
            type: 'object',
            properties: { status: { type: 'string', enum: ['ok'] }, database: { type: 'string' } },
          },
          ...errorResponses(503),
        },
      },
    },
    async () => {
      const health = await context.oauth.health.check();
      if (!health.ok) {
        throw new HttpError(
          'unavailable',
          health.problem === 'disk_full' ? "The database's disk is full" : 'The database does not answer',
        );
      }
      return { status: 'ok', database: health.database };
    },
  );

  fastify.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['operations'],
        // Not `response`: Fastify would serialize the text as a JSON string. Only the document reads this.
        openapiResponses: {
          200: { description: 'Prometheus text', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    async (_request, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return context.metrics.render();
    },
  );

  fastify.get('/openapi.json', { schema: { hide: true } }, async () =>
    buildOpenApiDocument(routes, API_VERSION),
  );
};
