import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { TokenDecryptionError } from '../crypto/tokenCipher.js';
import { AccountNotFound } from '../domain/errors.js';
import { isDatabaseUnavailable } from '../service/databaseErrors.js';
import { ServiceError } from '../service/serviceError.js';
import { ERROR_CATALOG, type ErrorCode, HttpError, isErrorCode } from './errorCatalog.js';

/** Maps anything thrown to `{error: {code, message, request_id}}` and a status from the catalog. */
export function toErrorBody(error: unknown): {
  code: ErrorCode;
  message: string;
  headers: Record<string, string>;
} {
  if (error instanceof HttpError) return { code: error.code, message: error.message, headers: error.headers };
  if (error instanceof ServiceError) {
    const headers: Record<string, string> =
      error.retryAfterSeconds === null ? {} : { 'retry-after': String(error.retryAfterSeconds) };
    return {
      code: isErrorCode(error.code) ? error.code : 'invalid_request',
      message: error.message,
      headers,
    };
  }
  if (error instanceof AccountNotFound)
    return { code: 'account_not_found', message: error.message, headers: {} };
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation) {
    return { code: 'invalid_request', message: fastifyError.message ?? 'invalid request', headers: {} };
  }
  switch (fastifyError.code) {
    case 'FST_ERR_BAD_URL':
      // Fastify's message repeats the path, which may carry a connect state or portal token.
      return { code: 'invalid_request', message: 'The URL is not valid', headers: {} };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'payload_too_large', message: 'Request body is too large', headers: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'unsupported_media_type', message: 'Send application/json', headers: {} };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'invalid_json', message: 'Request body is not valid JSON', headers: {} };
  }
  // Fastify's own 4xx (bad content length, JSON syntax, …) stay 4xx with a generic code.
  if (
    fastifyError.statusCode !== undefined &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    const code: ErrorCode = error instanceof SyntaxError ? 'invalid_json' : 'invalid_request';
    return { code, message: fastifyError.message ?? 'invalid request', headers: {} };
  }
  if (isDatabaseUnavailable(error)) {
    return {
      code: 'unavailable',
      message: 'The database is unavailable; try again shortly',
      headers: { 'retry-after': '5' },
    };
  }
  if (error instanceof TokenDecryptionError) {
    return {
      code: 'internal_error',
      message: 'Stored tokens cannot be decrypted with the configured keys',
      headers: {},
    };
  }
  return { code: 'internal_error', message: 'Internal error', headers: {} };
}

export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const body = toErrorBody(error);
  const status = ERROR_CATALOG[body.code];
  if (status >= 500) {
    request.log.error(
      {
        err:
          error instanceof Error
            ? { name: error.name, message: error.message, stack: error.stack }
            : String(error),
      },
      'request failed',
    );
  }
  return reply
    .status(status)
    .headers(body.headers)
    .type('application/json; charset=utf-8')
    .send({ error: { code: body.code, message: body.message, request_id: request.id } });
}
