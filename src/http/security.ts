import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeys } from '../service/apiKeys.js';
import { HttpError } from './errorCatalog.js';

/**
 * Paths whose last segment is a bearer secret, and query parameters that are one: a log line, a
 * metric or an error message shows them as "[redacted]".
 */
const SECRET_PATH = /^(\/(?:connect|portal\/s|media)\/)[^/?#]+/;
const SECRET_PARAMS = new Set(['code', 'state', 'token', 'access_token', 'signed_request']);

export function redactUrl(url: string): string {
  const [path = '', query] = url.split('?', 2) as [string, string | undefined];
  const safePath = path === '/connect/done' ? path : path.replace(SECRET_PATH, '$1[redacted]');
  if (query === undefined) return safePath;
  const params = new URLSearchParams(query);
  for (const key of [...params.keys()]) if (SECRET_PARAMS.has(key)) params.set(key, '[redacted]');
  return `${safePath}?${params.toString()}`;
}

/**
 * The onRequest hook of every /v1 route (buildApp refuses a /v1 route without it). It runs before
 * the body is read, so an anonymous caller cannot make us parse anything.
 */
export function apiKeyAuth(apiKeys: ApiKeys) {
  return async function requireApiKey(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    reply.header('www-authenticate', 'Bearer realm="social-oauth"');
    if (!match) throw new HttpError('unauthorized', 'Send Authorization: Bearer <api key>');
    const key = await apiKeys.verify(match[1]!);
    if (!key) throw new HttpError('unauthorized', 'The API key is not valid');
    reply.removeHeader('www-authenticate');
  };
}
