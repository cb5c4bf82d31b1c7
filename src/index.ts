/**
 * social-oauth: keeps OAuth tokens for Instagram, TikTok and YouTube accounts valid.
 *
 * The seed's API, with TypeScript names: open a SocialOAuth once, then
 *   const { account, result } = await ensureValidAccessToken(oauth, accountId);
 */
import type { OAuthTokenInfo } from './domain/token.js';
import type { PublishingClient } from './service/publications/publishingClient.js';
import type { SocialOAuth } from './service/socialOAuth.js';
import type { EnsureOptions, EnsureResult } from './service/tokenService.js';

export { type AppConfig, loadConfig, type RefreshSettings } from './config.js';
export { generateKeyEntry, TokenDecryptionError } from './crypto/tokenCipher.js';
export type { AccountListing, AccountStatus, PublicAccount, SocialAccount } from './domain/account.js';
export { toAccountListing, toPublicAccount } from './domain/account.js';
export { type Clock, ManualClock, systemClock } from './domain/clock.js';
export {
  AccountNotFound,
  ConfigurationError,
  OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from './domain/errors.js';
export type { NewOAuthEvent, OAuthEvent, OAuthEventType } from './domain/ledger.js';
export type { Logger } from './domain/logger.js';
export type { ProviderName } from './domain/providerName.js';
// Issue 13: publishing.
export type {
  Publication,
  PublicationError,
  PublicationStatus,
  PublicationSummary,
} from './domain/publication.js';
export {
  type KeepAlivePolicySettings,
  keepAliveRefreshAt,
  pointOfNoReturn,
  warmUpPlan,
} from './domain/refreshPolicy.js';
export {
  DEFAULT_REFRESH_THRESHOLD_SECONDS,
  isTokenExpiredOrClose,
  needsAccessTokenRefresh,
  type OAuthRefreshResult,
  type OAuthTokenInfo,
  type RefreshFailureReason,
} from './domain/token.js';
// Issue 12: the platform registry (a platform is a folder; registerPlatform adds one more).
export type { PlatformDefinition } from './platforms/platform.js';
export { defaultEnvNames } from './platforms/platform.js';
export type { Provider, ProviderCapabilities, ProviderTokens } from './platforms/provider.js';
export {
  isProviderName,
  PROVIDER_NAMES,
  platform,
  platforms,
  registerPlatform,
} from './platforms/registry.js';
export type {
  PlatformIdentity,
  PlatformPublisher,
  PublishIO,
  PublishOutcome,
  PublishRequest,
  ResumableState,
} from './publishing/platformPublisher.js';
export { PublicationWorker } from './service/publications/publicationWorker.js';
export type {
  PublishingClient,
  UploadVideoInput,
  UploadVideoOptions,
} from './service/publications/publishingClient.js';
export { type KeepAliveOutcome, type PassSummary, Refresher } from './service/refresher.js';
export { SocialOAuth, type SocialOAuthOptions } from './service/socialOAuth.js';
export type { EnsureOptions, EnsureResult, OAuthEventListener } from './service/tokenService.js';
export { type WarmUpResult, warmAccessToken } from './service/warmUp.js';

/** The seed's get_account_oauth_info: the account's tokens and expiry, or null without tokens. */
export function getAccountOAuthInfo(oauth: SocialOAuth, accountId: string): Promise<OAuthTokenInfo | null> {
  return oauth.tokens.getAccountOAuthInfo(accountId);
}

/** The seed's refresh_oauth_token: refresh now through the platform, whatever the expiry. */
export function refreshOAuthToken(oauth: SocialOAuth, accountId: string): Promise<EnsureResult> {
  return oauth.tokens.refreshOAuthToken(accountId);
}

/**
 * The seed's ensure_valid_access_token: the account with a valid access token, refreshed first
 * when expired or within the threshold; `result` is null when no refresh was needed.
 */
export function ensureValidAccessToken(
  oauth: SocialOAuth,
  accountId: string,
  options?: EnsureOptions,
): Promise<EnsureResult> {
  return oauth.tokens.ensureValidAccessToken(accountId, options);
}

/**
 * The seed's get_provider_client_for_account: makes sure the account has a valid token (the
 * exactly-once path), then returns its platform's publishing client: `authenticate()` reads the
 * profile and says whether the account can publish; `uploadVideo()` posts a video exactly once.
 */
export function getProviderClientForAccount(
  oauth: SocialOAuth,
  accountId: string,
): Promise<PublishingClient> {
  return oauth.publishingClientFor(accountId);
}
