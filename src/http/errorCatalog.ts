/**
 * Every error code the HTTP API answers with, and its status: the one place they are paired.
 * Codes are a contract (clients switch on them): add new ones, never rename.
 */
export const ERROR_CATALOG = {
  invalid_request: 400,
  invalid_json: 400,
  provider_not_configured: 400,
  return_to_not_allowed: 400,
  unauthorized: 401,
  invalid_signature: 401,
  forbidden: 403,
  not_found: 404,
  account_not_found: 404,
  api_key_not_found: 404,
  publication_not_found: 404,
  method_not_allowed: 405,
  account_needs_reauth: 409,
  account_revoked: 409,
  // Issue 10: Instagram refreshes only tokens at least 24 hours old; nothing was sent. Retry-After says when.
  token_too_young: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  // Issue 10: the platform refused our client id/secret or redirect URI: an operator must fix the
  // configuration; retrying cannot help (it used to pass for a 502 from the platform).
  provider_config_error: 500,
  refresh_failed: 502,
  refresh_in_progress: 503,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** An error a route throws on purpose; the error handler turns it into `{error: {code, message}}`. */
export class HttpError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = ERROR_CATALOG[code];
  }
}

/** The JSON schema of every error body, for route schemas and the OpenAPI document. */
export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(ERROR_CATALOG) },
        message: { type: 'string' },
        request_id: { type: 'string' },
      },
    },
  },
} as const;

/** Response schemas for the error statuses a route can answer with (same object: one OpenAPI component). */
export function errorResponses(...statuses: number[]): Record<number, typeof errorBodySchema> {
  return Object.fromEntries(statuses.map((status) => [status, errorBodySchema]));
}
