import { type Dispatcher, getGlobalDispatcher } from 'undici';
import type { z } from 'zod';
import { ProviderResponseInvalid, TransientProviderError } from '../domain/errors.js';
import type { ProviderName } from '../domain/providerName.js';
import type { ProviderHttpOptions } from './provider.js';

/**
 * The one place providers talk HTTP. Everything a platform can answer comes back as a
 * `ProviderAnswer` (status, headers, text, parsed JSON); only the network failing is an error here,
 * because what a status means is the platform's business (TikTok may say `invalid_grant` with 200).
 */

export interface ProviderRequest {
  method: 'GET' | 'POST';
  url: URL;
  /** Sent as application/x-www-form-urlencoded, the only body OAuth token endpoints accept. */
  form?: Record<string, string>;
  /** Sent as `Authorization: Bearer`, which keeps the token out of URLs and access logs. */
  bearerToken?: string;
  /** A secret-free name for error messages ("tiktok token endpoint"): never the URL, which may hold a token. */
  label: string;
}

/** Response headers, looked up case-insensitively (a WHATWG `Headers` is one too). */
export interface AnswerHeaders {
  get(name: string): string | null;
}

export interface ProviderAnswer {
  status: number;
  headers: AnswerHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** A token endpoint answers in a few hundred bytes; anything past this is not an answer to read. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export function sendProviderRequest(
  provider: ProviderName,
  http: ProviderHttpOptions,
  request: ProviderRequest,
): Promise<ProviderAnswer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (request.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(request.form).toString();
  }
  if (request.bearerToken !== undefined) headers.authorization = `Bearer ${request.bearerToken}`;
  const fail = (reason: 'timeout' | 'network_error', cause: unknown) =>
    new TransientProviderError(
      reason === 'timeout'
        ? `${request.label} did not answer within ${http.timeoutMs} ms`
        : `${request.label} could not be reached`,
      // The cause is the client's error itself: its message names the host, never our query string.
      { provider, providerErrorCode: reason, cause: stripUrl(cause) },
    );

  // undici's dispatch, the layer under its `request` and `fetch`: the answer is gathered straight
  // from the parser into a string, without the body stream, AbortSignal and promise plumbing of
  // the layers above, which cost more CPU than the call itself and are what a refresh storm is
  // made of. Never retried here: a resent POST can spend a rotating refresh token twice.
  return new Promise<ProviderAnswer>((resolve, reject) => {
    let settled = false;
    let controller: Dispatcher.DispatchController | null = null;
    let status = 0;
    let answerHeaders: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    let received = 0;
    const settle = (error: TransientProviderError | null, answer?: ProviderAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (answer && http.observeAnswer) {
        try {
          http.observeAnswer(provider, answer.headers);
        } catch {
          // An observer's failure is not the platform's answer's.
        }
      }
      if (error) reject(error);
      else resolve(answer!);
    };
    // One deadline covers connecting, the headers and the body: a platform that sends headers and
    // then stalls mid-body is as unavailable as one that never answers.
    const deadline = setTimeout(() => {
      const error = fail('timeout', new Error('the platform did not answer in time'));
      settle(error);
      controller?.abort(error);
    }, http.timeoutMs);
    try {
      (http.dispatcher ?? getGlobalDispatcher()).dispatch(
        {
          origin: request.url.origin,
          path: `${request.url.pathname}${request.url.search}`,
          method: request.method,
          headers,
          body,
        },
        {
          onRequestStart(started) {
            controller = started;
            // The deadline passed while the request waited for a connection.
            if (settled) started.abort(new Error('the platform did not answer in time'));
          },
          onResponseStart(_controller, statusCode, responseHeaders) {
            status = statusCode;
            answerHeaders = responseHeaders;
          },
          onResponseData(dataController, chunk) {
            received += chunk.length;
            if (received > MAX_ANSWER_BYTES) {
              // The platform answered, with more than any token endpoint sends: the answer counts,
              // without its body, so that the provider judges it by its status. A 2xx is then an
              // unreadable success, never retried on a rotating platform (the token may be spent);
              // a transport error here would be retried.
              settle(null, { status, headers: readHeaders(answerHeaders), text: '', json: undefined });
              dataController.abort(new Error(`the answer is over ${MAX_ANSWER_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          },
          onResponseEnd() {
            const text =
              chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
            settle(null, {
              status,
              headers: readHeaders(answerHeaders),
              text,
              json: parseJsonOrUndefined(text),
            });
          },
          onResponseError(_controller, error) {
            settle(fail('network_error', error));
          },
        },
      );
    } catch (error) {
      // A request undici refuses outright (a closed pool, a malformed header).
      settle(fail('network_error', error));
    }
  });
}

export function parseJsonOrUndefined(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Validates a success body; a platform that changed its shape is not a reason to store garbage. */
export function parseSuccessBody<Schema extends z.ZodType>(
  provider: ProviderName,
  schema: Schema,
  answer: Pick<ProviderAnswer, 'json' | 'status'>,
  label: string,
): z.output<Schema> {
  const result = schema.safeParse(answer.json);
  if (result.success) return result.data;
  // Only the paths of the failing fields go into the message: the values may be tokens.
  const paths = result.error.issues.map((issue) => issue.path.join('.') || '(root)').join(', ');
  throw new ProviderResponseInvalid(`${label} answered with an unexpected body (fields: ${paths})`, {
    provider,
    httpStatus: answer.status,
  });
}

/**
 * Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). Returns milliseconds from
 * `nowMs`, never negative, or null when absent or unreadable.
 */
export function parseRetryAfter(headerValue: string | null | undefined, nowMs: number): number | null {
  if (headerValue === null || headerValue === undefined) return null;
  const value = headerValue.trim();
  if (value === '') return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date always names its month; without this, Date.parse reads "-5" as the year -5.
  if (!/[a-z]{3}/i.test(value)) return null;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

/**
 * The real endpoint, or the same path (and query) under `baseUrl` when one is set: that is how the
 * simulator and the sandbox stand in for a platform's several hosts with one prefix.
 */
export function resolveEndpoint(baseUrl: string | null, realUrl: string): URL {
  if (baseUrl === null) return new URL(realUrl);
  const real = new URL(realUrl);
  return new URL(`${baseUrl.replace(/\/+$/, '')}${real.pathname}${real.search}`);
}

function readHeaders(raw: Record<string, string | string[] | undefined>): AnswerHeaders {
  return {
    get(name) {
      const value = raw[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

function stripUrl(error: unknown): unknown {
  // undici puts no URL in its messages, but keep it that way whatever it says: keep the name, the
  // message without URLs, and the system error code (ECONNREFUSED, …) that says what went wrong.
  if (!(error instanceof Error)) return undefined;
  const own = (error as { code?: unknown }).code;
  const inner = (error.cause as { code?: unknown } | undefined)?.code;
  const found = typeof own === 'string' ? own : inner;
  const code = typeof found === 'string' ? ` (${found})` : '';
  const safe = new Error(`${error.message.replace(/https?:\/\/\S+/g, '<url>')}${code}`);
  safe.name = error.name;
  return safe;
}
