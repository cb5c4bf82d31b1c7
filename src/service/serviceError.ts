/**
 * Failures of the service's own operations (not the platform's: those are OAuthProviderError).
 * Each code is stable: the HTTP layer maps it to a status in one catalog (src/http/errorCatalog.ts)
 * and the CLI to an exit code.
 */
export type ServiceErrorCode =
  | 'invalid_request'
  | 'provider_not_configured'
  | 'return_to_not_allowed'
  | 'account_needs_reauth'
  | 'account_revoked'
  | 'refresh_failed'
  | 'refresh_in_progress'
  | 'rate_limited'
  | 'api_key_not_found';

export class ServiceError extends Error {
  constructor(
    readonly code: ServiceErrorCode,
    message: string,
    /** For rate_limited: seconds until the platform allows the next try. */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}
