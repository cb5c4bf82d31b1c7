import type { Dispatcher } from 'undici';
import type { ProviderCapabilities } from '../domain/capabilities.js';
import type { ProviderName } from '../domain/providerName.js';
import type { LifetimeNote } from '../domain/tokenLifetime.js';
import type { AnswerHeaders } from './providerHttp.js';

// A platform's nature in one record: a domain type (the refresh policy reads it), named here too.
export type { ProviderCapabilities } from '../domain/capabilities.js';

/** Tokens as a platform returned them, already validated against its schema. */
export interface ProviderTokens {
  accessToken: string;
  /** null when the response carried none (Google refresh, Instagram always). Never means "delete it". */
  refreshToken: string | null;
  expiresInSeconds: number | null;
  refreshTokenExpiresInSeconds: number | null;
  /** null when the response did not say. */
  scopes: string[] | null;
  /** The platform's id for the user when the token response carries one (TikTok open_id, Instagram user_id). */
  externalAccountId: string | null;
  /** Lifetimes the answer gave that were replaced (missing, unreadable, past the documented maximum). */
  lifetimeNotes?: LifetimeNote[];
}

/**
 * What a refresh answer gave. The access token may be missing from an answer that still carries a
 * new refresh token: that refresh token is the grant and is kept (the stored access token stays).
 */
export type RefreshedTokens = Omit<ProviderTokens, 'accessToken'> & { accessToken: string | null };

export interface ProviderProfile {
  externalAccountId: string;
  displayName: string | null;
}

export interface AuthorizationUrlInput {
  state: string;
  /** PKCE verifier; the provider derives the S256 challenge. Ignored where PKCE is not supported. */
  codeVerifier: string | null;
  scopes: readonly string[];
}

/** What a refresh needs from the stored account. */
export interface RefreshInput {
  accessToken: string | null;
  refreshToken: string | null;
}

/** Settings for one platform, from the environment (see src/config.ts). */
export interface ProviderSettings {
  clientId: string;
  clientSecret: string;
  redirectUri: string | null;
  /**
   * Replaces every host of the platform: the real paths are served under it. This is how tests and
   * the sandbox point at the simulator (`TIKTOK_BASE_URL`, …). null = the real platform hosts.
   */
  baseUrl: string | null;
  /**
   * The platform API version to pin where the platform versions its API (Instagram's Graph API:
   * INSTAGRAM_GRAPH_VERSION); absent = the provider's own default.
   */
  apiVersion?: string;
}

export interface ProviderHttpOptions {
  /** undici's connection pool to use; its global one when absent. */
  dispatcher?: Dispatcher;
  /** Per request; a platform that does not answer in time is a transient error. */
  timeoutMs: number;
  /** Told the headers of every answer (rate-limit usage headers slow the outbound gate). */
  observeAnswer?: (provider: ProviderName, headers: AnswerHeaders) => void;
}

/**
 * One platform. Implementations throw only the errors of src/domain/errors.ts, with the platform's
 * own error code, description and status, and never a token in a message.
 */
export interface Provider {
  readonly name: ProviderName;
  readonly capabilities: ProviderCapabilities;
  readonly defaultScopes: readonly string[];
  createAuthorizationUrl(input: AuthorizationUrlInput): URL;
  exchangeAuthorizationCode(code: string, codeVerifier: string | null): Promise<ProviderTokens>;
  refreshAccessToken(input: RefreshInput): Promise<RefreshedTokens>;
  /**
   * Resolves only when the platform confirmed the revocation (2xx); any refusal (an expired token,
   * one already revoked) throws, so that "revoked" is never claimed for a grant that may live on.
   * Throws ProviderConfigError where capabilities.hasRevocationEndpoint is false.
   */
  revokeToken(token: string): Promise<void>;
  fetchProfile(accessToken: string): Promise<ProviderProfile>;
}
