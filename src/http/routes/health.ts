import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { sql } from 'kysely';
import type { HttpContext } from '../context.js';
import { errorResponses, HttpError } from '../errorCatalog.js';
import { buildOpenApiDocument, type CollectedRoute } from '../openapi.js';

export const API_VERSION = '1.0.0';

/**
 * Below this much free space the SQLite default counts as down: a read still answers on a full
 * disk, but refreshes cannot commit (SQLITE_FULL), so a load balancer should look elsewhere.
 */
const SQLITE_MIN_FREE_BYTES = 1024 * 1024;

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
      try {
        await sql`select 1`.execute(context.oauth.database.db);
      } catch {
        throw new HttpError('unavailable', 'The database does not answer');
      }
      if (context.oauth.database.kind === 'sqlite') {
        const disk = await statfs(dirname(context.oauth.config.sqlitePath)).catch(() => null);
        if (disk !== null && disk.bavail * disk.bsize < SQLITE_MIN_FREE_BYTES) {
          throw new HttpError('unavailable', "The database's disk is full");
        }
      }
      return { status: 'ok', database: context.oauth.database.kind };
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
