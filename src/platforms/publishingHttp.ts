import type { Readable } from 'node:stream';
import { getGlobalDispatcher, request } from 'undici';
import { ReauthorizationRequired, TransientProviderError } from '../domain/errors.js';
import type { ProviderName } from '../domain/providerName.js';
import { backoffDelayMs } from '../domain/retryPolicy.js';
import type { PublishIO } from '../publishing/platformPublisher.js';
// The only imports from the OAuth side's shared modules (issue 12 moves them to src/platforms/):
// the publishing clients take them from here.
import type { ProviderHttpOptions } from './provider.js';
import { type AnswerHeaders, parseJsonOrUndefined } from './providerHttp.js';

export type { ProviderHttpOptions, ProviderSettings } from './provider.js';
export { parseRetryAfter, resolveEndpoint } from './providerHttp.js';

/**
 * HTTP for the publishing clients. Unlike token calls (providerHttp.ts), these carry
 * media: a body is streamed from `io.openMedia` as the socket takes it, never gathered in memory,
 * and undici's idle timeout restarts with every chunk written, so a slow 64 MB chunk is not a
 * timeout while a stalled one is.
 */

export interface PublishingCall {
  method: 'GET' | 'POST' | 'PUT';
  url: URL | string;
  /** Sent as `Authorization: Bearer`, never in the URL. */
  bearerToken?: string;
  json?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /** A media body, opened afresh for each attempt, and its exact length. */
  media?: { open: () => Readable; length: number };
  /** A secret-free name for errors ("youtube chunk upload"): never the URL, which may be a capability. */
  label: string;
}

export interface PublishingAnswer {
  status: number;
  headers: AnswerHeaders;
  text: string;
  json: unknown;
}

/** An answer to a publishing call is a small JSON document; more is not read. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export async function callPlatform(
  provider: ProviderName,
  http: ProviderHttpOptions,
  call: PublishingCall,
  signal?: AbortSignal,
): Promise<PublishingAnswer> {
  const headers: Record<string, string> = { accept: 'application/json', ...call.headers };
  let body: string | Readable | undefined;
  if (call.json !== undefined) {
    headers['content-type'] = 'application/json; charset=UTF-8';
    body = JSON.stringify(call.json);
  } else if (call.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(call.form).toString();
  } else if (call.media !== undefined) {
    headers['content-length'] = String(call.media.length);
    body = call.media.length === 0 ? '' : call.media.open();
  }
  if (call.bearerToken !== undefined) headers.authorization = `Bearer ${call.bearerToken}`;
  try {
    const answer = await request(call.url, {
      method: call.method,
      headers,
      body,
      signal,
      dispatcher: http.dispatcher ?? getGlobalDispatcher(),
      headersTimeout: http.timeoutMs,
      bodyTimeout: http.timeoutMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of answer.body) {
      size += (chunk as Buffer).length;
      if (size <= MAX_ANSWER_BYTES) chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const raw = answer.headers;
    return {
      status: answer.statusCode,
      headers: {
        get(name) {
          const value = raw[name.toLowerCase()];
          if (value === undefined) return null;
          return Array.isArray(value) ? value.join(', ') : value;
        },
      },
      text,
      json: parseJsonOrUndefined(text),
    };
  } catch (error) {
    if (body !== undefined && typeof body !== 'string') body.destroy();
    if (signal?.aborted) throw signal.reason ?? error;
    const code = (error as { code?: unknown }).code;
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    throw new TransientProviderError(
      timeout
        ? `${call.label} did not answer within ${http.timeoutMs} ms`
        : `${call.label} failed on the network`,
      // Only the error's code: undici messages are URL-free, but a session URI must never leak.
      { provider, providerErrorCode: timeout ? 'timeout' : 'network_error', cause: safeCause(error) },
    );
  }
}

/**
 * Sends a request that carries our token; when the platform refuses the token (`isAuthRefusal`),
 * asks the service for one forced refresh and sends that one request once more. A second refusal
 * is ReauthorizationRequired, carrying the platform's code.
 */
export async function withTokenRetry(
  provider: ProviderName,
  io: PublishIO,
  send: (token: string) => Promise<PublishingAnswer>,
  isAuthRefusal: (answer: PublishingAnswer) => string | null,
): Promise<PublishingAnswer> {
  const first = await send(await io.accessToken());
  if (isAuthRefusal(first) === null) return first;
  const second = await send(await io.refreshAfterAuthFailure());
  const code = isAuthRefusal(second);
  if (code === null) return second;
  throw new ReauthorizationRequired(`${provider} refused the access token again after a refresh`, {
    provider,
    providerErrorCode: code,
    httpStatus: second.status,
  });
}

export interface RetrySettings {
  /** Attempts in a row without progress before a transient error escapes to the service. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** Waits before attempt `attempt + 1` (full-jitter backoff, or the platform's Retry-After when longer). */
export function backoff(
  io: PublishIO,
  settings: RetrySettings,
  attempt: number,
  retryAfterMs: number | null = null,
): Promise<void> {
  const delay = backoffDelayMs(attempt, { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs });
  return io.sleep(retryAfterMs === null ? delay : Math.max(delay, retryAfterMs));
}

/** Runs `step`, retrying transient failures with backoff; the last one escapes. */
export async function retryTransient<T>(
  io: PublishIO,
  settings: RetrySettings,
  step: () => Promise<T>,
  isTransient: (error: unknown) => boolean,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!isTransient(error) || attempt >= settings.maxAttempts || io.signal.aborted) throw error;
      await backoff(io, settings, attempt, (error as { retryAfterMs?: number | null }).retryAfterMs ?? null);
    }
  }
}

function safeCause(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const safe = new Error(`${error.name}${typeof code === 'string' ? ` (${code})` : ''}`);
  safe.name = error.name;
  return safe;
}
