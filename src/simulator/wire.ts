import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The simulator's routes are plain functions from a parsed request to a response value, so each
 * platform file reads like the platform's documentation and none of them touches node:http.
 */

export interface SimRequest {
  method: string;
  /** Path below the platform prefix: `/v2/oauth/token/` for `/tiktok/v2/oauth/token/`. */
  path: string;
  query: URLSearchParams;
  /** The form body (application/x-www-form-urlencoded); empty for other bodies. */
  form: URLSearchParams;
  headers: IncomingMessage['headers'];
}

export type SimResponse =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  /** A body written as-is: Instagram's code exchange sends user_id as a bare 17-digit number. */
  | { kind: 'raw'; status: number; text: string; contentType: string; headers?: Record<string, string> }
  | { kind: 'redirect'; location: string };

export function json(status: number, body: unknown, headers?: Record<string, string>): SimResponse {
  return { kind: 'json', status, body, headers };
}

export function redirect(location: string): SimResponse {
  return { kind: 'redirect', location };
}

export function text(status: number, body: string): SimResponse {
  return { kind: 'raw', status, text: body, contentType: 'text/plain; charset=utf-8' };
}

/** The token a request presents: `Authorization: Bearer …`, else `access_token` in the query or form. */
export function presentedAccessToken(request: SimRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === 'string' && /^bearer /i.test(header)) return header.slice(7).trim();
  return request.query.get('access_token') ?? request.form.get('access_token');
}

export async function readRequest(incoming: IncomingMessage, prefixLength: number): Promise<SimRequest> {
  const url = new URL(incoming.url ?? '/', 'http://simulator.invalid');
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const contentType = incoming.headers['content-type'] ?? '';
  return {
    method: incoming.method ?? 'GET',
    path: url.pathname.slice(prefixLength) || '/',
    query: url.searchParams,
    form: contentType.startsWith('application/x-www-form-urlencoded')
      ? new URLSearchParams(body)
      : new URLSearchParams(),
    headers: incoming.headers,
  };
}

export function writeResponse(outgoing: ServerResponse, response: SimResponse): void {
  if (response.kind === 'redirect') {
    outgoing.writeHead(302, { location: response.location, 'content-length': '0' });
    outgoing.end();
    return;
  }
  const [body, contentType] =
    response.kind === 'json'
      ? [JSON.stringify(response.body), 'application/json; charset=utf-8']
      : [response.text, response.contentType];
  outgoing.writeHead(response.status, {
    ...response.headers,
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(body)),
  });
  outgoing.end(body);
}
