import type { ProviderName } from './providerName.js';

/**
 * The family of errors a platform's answer can turn into. Each carries a stable `code`, the
 * platform's own error code, description and HTTP status, and never a token: these objects end up
 * in logs, in the ledger and in API responses.
 */
export interface ProviderErrorDetails {
  provider: ProviderName;
  /** The platform's own error code: `invalid_grant`, `190`, `access_token_invalid`, … */
  providerErrorCode?: string | null;
  providerErrorDescription?: string | null;
  httpStatus?: number | null;
  cause?: unknown;
}

export type OAuthErrorCode =
  | 'reauthorization_required'
  | 'rate_limited'
  | 'transient_provider_error'
  | 'provider_config_error'
  | 'provider_response_invalid';

export abstract class OAuthProviderError extends Error {
  abstract readonly code: OAuthErrorCode;
  readonly provider: ProviderName;
  readonly providerErrorCode: string | null;
  readonly providerErrorDescription: string | null;
  readonly httpStatus: number | null;

  constructor(message: string, details: ProviderErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.provider = details.provider;
    this.providerErrorCode = details.providerErrorCode ?? null;
    this.providerErrorDescription = details.providerErrorDescription ?? null;
    this.httpStatus = details.httpStatus ?? null;
  }

  /** A secret-free summary for logs, the ledger and API responses. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      provider: this.provider,
      message: this.message,
      providerErrorCode: this.providerErrorCode,
      providerErrorDescription: this.providerErrorDescription,
      httpStatus: this.httpStatus,
    };
  }
}

/** The grant is dead (revoked, expired, rotated away, missing scope): only the user can fix it. */
export class ReauthorizationRequired extends OAuthProviderError {
  readonly code = 'reauthorization_required' as const;
}

/** The platform said slow down. `retryAfterMs` comes from Retry-After when the platform sent one. */
export class RateLimited extends OAuthProviderError {
  readonly code = 'rate_limited' as const;
  readonly retryAfterMs: number | null;
  constructor(message: string, details: ProviderErrorDetails & { retryAfterMs?: number | null }) {
    super(message, details);
    this.retryAfterMs = details.retryAfterMs ?? null;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), retryAfterMs: this.retryAfterMs };
  }
}

/** 5xx, timeouts, connection failures: worth retrying with backoff. The grant is still fine. */
export class TransientProviderError extends OAuthProviderError {
  readonly code = 'transient_provider_error' as const;
}

/** Our side is wrong (bad client id/secret, unregistered redirect URI): retrying will not help. */
export class ProviderConfigError extends OAuthProviderError {
  readonly code = 'provider_config_error' as const;
}

/** The platform answered 2xx with a body we cannot trust (schema mismatch). Treated as transient. */
export class ProviderResponseInvalid extends OAuthProviderError {
  readonly code = 'provider_response_invalid' as const;
}

export function isRetryable(
  error: unknown,
): error is TransientProviderError | ProviderResponseInvalid | RateLimited {
  return (
    error instanceof TransientProviderError ||
    error instanceof ProviderResponseInvalid ||
    error instanceof RateLimited
  );
}

/** Errors of our own domain (not the platform's) that the CLI and HTTP layers map to messages. */
export class AccountNotFound extends Error {
  readonly code = 'account_not_found' as const;
  constructor(readonly accountId: string) {
    super(`No account with id ${accountId}`);
    this.name = 'AccountNotFound';
  }
}

export class ConfigurationError extends Error {
  readonly code = 'configuration_error' as const;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}
