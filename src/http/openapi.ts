import type { RouteOptions } from 'fastify';
import { errorBodySchema } from './errorCatalog.js';

/**
 * The OpenAPI document is generated from the routes' own JSON schemas, so it cannot drift from what
 * the server validates. docs/openapi.json is the same document, checked by a test.
 */
export interface CollectedRoute {
  method: string;
  url: string;
  schema: Record<string, unknown>;
  authenticated: boolean;
}

export function collectRoute(routes: CollectedRoute[], route: RouteOptions): void {
  const schema = route.schema as Record<string, unknown> | undefined;
  if (!schema || schema.hide === true) return;
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  for (const method of methods) {
    if (method === 'HEAD') continue;
    routes.push({
      method: method.toLowerCase(),
      url: route.url,
      schema,
      authenticated: route.url.startsWith('/v1/'),
    });
  }
}

const ERROR_REF = { $ref: '#/components/schemas/ErrorBody' };

function withRefs(schema: unknown): unknown {
  if (schema === errorBodySchema) return ERROR_REF;
  if (Array.isArray(schema)) return schema.map(withRefs);
  if (schema && typeof schema === 'object') {
    return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, withRefs(value)]));
  }
  return schema;
}

function parameters(
  schema: Record<string, unknown>,
  key: 'params' | 'querystring',
  location: 'path' | 'query',
) {
  const object = schema[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  if (!object?.properties) return [];
  return Object.entries(object.properties).map(([name, property]) => ({
    name,
    in: location,
    required: location === 'path' || (object.required ?? []).includes(name),
    schema: property,
    ...(typeof (property as { description?: unknown }).description === 'string'
      ? { description: (property as { description: string }).description }
      : {}),
  }));
}

export function buildOpenApiDocument(
  routes: readonly CollectedRoute[],
  version: string,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const sorted = [...routes].sort((a, b) => a.url.localeCompare(b.url) || a.method.localeCompare(b.method));
  for (const route of sorted) {
    const path = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const schema = route.schema;
    const responses: Record<string, unknown> = {};
    const declared = (schema.response ?? schema.openapiResponses ?? {}) as Record<string, unknown>;
    for (const [status, body] of Object.entries(declared)) {
      const described = body as { description?: string; content?: unknown };
      responses[status] = described.content
        ? { description: described.description ?? 'Response', content: described.content }
        : {
            description: Number(status) >= 400 ? 'Error' : 'Success',
            ...(status === '204' ? {} : { content: { 'application/json': { schema: withRefs(body) } } }),
          };
    }
    const bodySchema = schema.body as Record<string, unknown> | undefined;
    const requestBodyContent = schema.openapiRequestBody as Record<string, unknown> | undefined;
    const consumes = (schema.consumes as string[] | undefined) ?? ['application/json'];
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: schema.operationId,
      summary: schema.summary,
      description: schema.description,
      tags: schema.tags,
      ...(route.authenticated ? { security: [{ apiKey: [] }] } : {}),
      parameters: [...parameters(schema, 'params', 'path'), ...parameters(schema, 'querystring', 'query')],
      ...(requestBodyContent
        ? { requestBody: { required: true, content: withRefs(requestBodyContent) } }
        : {}),
      ...(bodySchema && !requestBodyContent
        ? {
            requestBody: {
              required: true,
              content: Object.fromEntries(consumes.map((type) => [type, { schema: withRefs(bodySchema) }])),
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'social-oauth',
      version,
      description:
        'Keeps OAuth tokens for Instagram, TikTok and YouTube accounts valid. Errors are always ' +
        '`{"error": {"code", "message", "request_id"}}`; codes are stable.',
    },
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: `social-oauth api-keys create`' },
      },
      schemas: { ErrorBody: errorBodySchema },
    },
    paths,
  };
}

declare module 'fastify' {
  /** Keys Fastify ignores and the OpenAPI document reads. */
  interface FastifySchema {
    operationId?: string;
    summary?: string;
    description?: string;
    tags?: string[];
    /** Left out of the document (pages for people, not API). */
    hide?: boolean;
    consumes?: string[];
    openapiResponses?: Record<number, unknown>;
    /** The request body by content type, where it is not validated by `body` (a streamed multipart upload). */
    openapiRequestBody?: Record<string, unknown>;
  }
}
