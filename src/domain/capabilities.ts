import type { LifetimeLimits } from './tokenLifetime.js';

/**
 * A platform's nature in one record, read by the refresh policy and the service, so that no code
 * outside `src/platforms/` has to ask "is this TikTok?".
 */
export interface ProviderCapabilities {
  /** Each refresh returns a new refresh token and spends the old one (TikTok). */
  rotatesRefreshToken: boolean;
  /** There is no refresh token: the access token itself is exchanged for a new one (Instagram). */
  refreshesAccessTokenItself: boolean;
  /** A token younger than this cannot be refreshed (Instagram: 24 h). 0 where there is no rule. */
  minimumTokenAgeForRefreshSeconds: number;
  /** Refresh tokens die after this long unused (Google: about 6 months); null where not documented. */
  refreshTokenIdleLifetimeSeconds: number | null;
  /** Whether the authorize endpoint accepts PKCE S256 for a server-side web app. */
  supportsPkce: boolean;
  /** Whether the platform has a token revocation endpoint. */
  hasRevocationEndpoint: boolean;
  /**
   * Which token ends the whole grant at the revocation endpoint: Google's refresh token (an
   * expired access token is refused and ends nothing), TikTok's access token (the only kind its
   * endpoint takes, so an expired one is refreshed first). Default 'access_token'.
   */
  revokeWith?: 'access_token' | 'refresh_token';
  /** How scopes are joined in the authorize URL. */
  scopeSeparator: ',' | ' ';
  /** What the platform documents about access-token lifetimes (answers are clamped to it). */
  accessTokenLifetime: LifetimeLimits;
  /** The same for refresh tokens; null where there is none (Instagram). */
  refreshTokenLifetime: LifetimeLimits | null;
  /**
   * Issue 13: the platform takes no video bytes, only a public URL it fetches them from (Instagram
   * Login): a file given to us is served at an expiring link under PUBLIC_BASE_URL.
   */
  publishesFromPublicUrl?: boolean;
}
