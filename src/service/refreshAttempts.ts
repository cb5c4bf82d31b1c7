import type { SocialAccount } from '../domain/account.js';
import {
  isRetryable,
  OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
  TransientProviderError,
} from '../domain/errors.js';
import { type PossibleLossCause, possibleLossCause, UNANSWERED_CODES } from '../domain/lossDetection.js';
import { nextAttemptDelayMs } from '../domain/retryPolicy.js';
import { isAccessTokenExpired, type RefreshFailureReason } from '../domain/token.js';
import type { ProviderCapabilities, RefreshedTokens } from '../platforms/provider.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import { missingCredential, refreshFailure } from './refreshOutcomes.js';
import type { EnsureResult, HeldLease, TokenServiceDeps } from './tokenServiceTypes.js';

/**
 * The attempt loop of one refresh, run by the process that holds the account's lease: renew the
 * lease, call the platform, classify its answer (retry, flag for re-authorization, record a
 * failure) and hand issued tokens to the commit. Loss detection (why a refresh token may already
 * be spent) is decided here, from this refresh's tries and the ledger's history.
 */

/** What the attempt loop needs of the token service: its settings and its ways of ending a refresh. */
export interface AttemptHost {
  readonly deps: TokenServiceDeps;
  readonly instanceId: string;
  sleep(ms: number): Promise<void>;
  random(): number;
  recordFailure(
    account: SocialAccount,
    reason: RefreshFailureReason,
    error: OAuthProviderError | null,
    attempts: number,
    message: string,
    extraDetail?: Record<string, unknown>,
  ): Promise<EnsureResult>;
  markNeedsReauth(
    account: SocialAccount,
    reason: 'needs_reauth' | 'no_refresh_token',
    providerErrorCode: string | null,
    attempts: number,
    error?: OAuthProviderError,
    extraDetail?: Record<string, unknown>,
  ): Promise<EnsureResult>;
  commitRefresh(
    account: SocialAccount,
    tokens: RefreshedTokens,
    attempts: number,
    lease: HeldLease,
    capabilities: ProviderCapabilities,
  ): Promise<EnsureResult>;
}

export async function performRefresh(
  host: AttemptHost,
  account: SocialAccount,
  lease: HeldLease,
  afterAbandonedLease = false,
): Promise<EnsureResult> {
  const { clock, settings } = host.deps;
  const provider = host.deps.providers[account.provider];
  if (!provider) {
    return host.recordFailure(
      account,
      'provider_config_error',
      null,
      0,
      `${account.provider} is not configured`,
    );
  }
  const capabilities = provider.capabilities;
  const credential = capabilities.refreshesAccessTokenItself ? account.accessToken : account.refreshToken;
  if (!credential) {
    // Without a refresh token (or, on Instagram, a live token) only the user can bring it back.
    return host.markNeedsReauth(account, 'no_refresh_token', null, 0);
  }
  if (capabilities.refreshesAccessTokenItself && isAccessTokenExpired(account, clock)) {
    // Instagram cannot refresh an expired token: it is lost, the user must log in again.
    return host.markNeedsReauth(account, 'needs_reauth', 'token_expired', 0);
  }
  const minimumAgeMs = capabilities.minimumTokenAgeForRefreshSeconds * 1000;
  if (
    minimumAgeMs > 0 &&
    account.tokenIssuedAt !== null &&
    clock.now() - account.tokenIssuedAt < minimumAgeMs
  ) {
    // Instagram refuses tokens younger than 24 h; asking would only earn an error.
    return { account, result: refreshFailure(account, 'token_too_young', null, 0) };
  }

  let lastError: OAuthProviderError | null = null;
  // A request that got no answer may still have been processed: with rotating refresh tokens
  // (TikTok) the retry then sends a spent token and gets invalid_grant. That loss cannot be
  // undone, but it is recorded as such in the ledger so that it can be counted.
  // Why this refresh may already have spent the token: a lease taken over from a holder that
  // never released it, a try without an answer, or a server error (the platform may fail after
  // it has rotated). Kept for the invalid_grant that may follow, here or at a later refresh.
  let lossCause: PossibleLossCause | null = afterAbandonedLease ? 'abandoned_lease' : null;
  // The calls actually made: a failure that stops early (not retryable, a long Retry-After) says so.
  let attemptsMade = 0;
  for (let attempt = 1; attempt <= settings.maxAttempts; attempt++) {
    attemptsMade = attempt;
    // Waiting for the platform's rate limit comes first, so that the lease is renewed after it.
    const release = host.deps.outbound ? await host.deps.outbound.acquire(account.provider) : null;
    // Renewing before the call means a refresher whose lease lapsed (a long stall, a long wait
    // for the rate limit) stops here instead of spending a refresh token that another process may
    // be spending too. A lease with more than half its time left (just taken) needs no renewal:
    // the call's timeout is at most half the lease (enforced by loadConfig).
    const leaseMs = settings.leaseSeconds * 1000;
    const renewAt = clock.now();
    if (lease.until - renewAt < leaseMs / 2) {
      let renewed: boolean;
      try {
        renewed = await host.deps.accounts.tryRenewRefreshLease(
          account.id,
          host.instanceId,
          renewAt,
          leaseMs,
        );
      } catch (error) {
        release?.();
        throw error;
      }
      if (!renewed) {
        release?.();
        return { account, result: refreshFailure(account, 'refresh_in_progress', null, attempt - 1) };
      }
      lease.until = renewAt + leaseMs;
    }
    try {
      let tokens: RefreshedTokens;
      try {
        tokens = await provider.refreshAccessToken({
          accessToken: account.accessToken,
          refreshToken: account.refreshToken,
        });
      } finally {
        release?.();
      }
      const missing = missingCredential(tokens, account, capabilities);
      if (missing !== null) {
        throw new ProviderResponseInvalid(`${account.provider} refresh answered 2xx without ${missing}`, {
          provider: account.provider,
          httpStatus: 200,
        });
      }
      return await host.commitRefresh(account, tokens, attempt, lease, capabilities);
    } catch (error) {
      if (!(error instanceof OAuthProviderError)) throw error;
      lastError = error;
      if (error instanceof ReauthorizationRequired) {
        // Judged on everything since the grant was last known good: an earlier unanswered try
        // is not hidden by a later 503 or an unrelated row (keys_rotated).
        const cause = capabilities.rotatesRefreshToken
          ? (lossCause ?? (await possibleLossInHistory(host.deps.ledger, account.id)))
          : null;
        return host.markNeedsReauth(account, 'needs_reauth', error.providerErrorCode, attempt, error, {
          possiblyLostInFlight: cause !== null,
          ...(cause !== null ? { possibleLossCause: cause } : {}),
        });
      }
      if (UNANSWERED_CODES.has(error.providerErrorCode ?? '')) lossCause = 'unanswered_refresh';
      else if (error instanceof TransientProviderError) lossCause ??= 'server_error';
      if (
        capabilities.rotatesRefreshToken &&
        error instanceof ProviderResponseInvalid &&
        (error.httpStatus ?? 0) >= 200 &&
        (error.httpStatus ?? 0) < 300
      ) {
        // A 2xx means the platform accepted (and spent) the refresh token, and we could not
        // read the new one: the grant is lost unless the platform did not rotate after all.
        // Resending can only earn invalid_grant, so the account is flagged now, not at the next
        // refresh (issue 10, item 1).
        return host.markNeedsReauth(account, 'needs_reauth', 'unreadable_success', attempt, error, {
          possiblyLostInFlight: true,
          possibleLossCause: 'unreadable_success',
          unreadableSuccess: true,
        });
      }
      if (error instanceof ProviderConfigError) {
        return host.recordFailure(account, 'provider_config_error', error, attempt, error.message);
      }
      if (!isRetryable(error) || attempt === settings.maxAttempts) break;
      const retryAfterMs = error instanceof RateLimited ? error.retryAfterMs : null;
      const delay = nextAttemptDelayMs(
        attempt,
        retryAfterMs,
        { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
        host.random,
      );
      // A Retry-After longer than we may hold the account is reported, not slept through.
      if (delay >= settings.leaseSeconds * 1000) break;
      host.deps.logger.info(
        { accountId: account.id, provider: account.provider, attempt, delayMs: delay, err: error.toJSON() },
        'refresh failed, retrying',
      );
      await host.sleep(delay);
    }
  }
  const reason: RefreshFailureReason = lastError instanceof RateLimited ? 'rate_limited' : 'provider_error';
  // Carried forward: the invalid_grant that may follow is then still known as a possible loss.
  const carried: Record<string, unknown> =
    capabilities.rotatesRefreshToken && lossCause !== null ? { possibleLossCause: lossCause } : {};
  if (capabilities.rotatesRefreshToken && afterAbandonedLease) carried.afterAbandonedLease = true;
  return host.recordFailure(account, reason, lastError, attemptsMade, lastError?.message ?? reason, carried);
}

/** Why the ledger says the grant may have been lost since it was last known good, or null. */
export async function possibleLossInHistory(ledger: LedgerRepository, accountId: string) {
  return possibleLossCause(await ledger.sinceLastConfirmedGrant(accountId));
}
