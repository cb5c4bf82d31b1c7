import { randomUUID } from 'node:crypto';
import type { RefreshSettings } from '../config.js';
import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import {
  AccountNotFound,
  isRetryable,
  OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  RateLimited,
  ReauthorizationRequired,
} from '../domain/errors.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import { nextAttemptDelayMs } from '../domain/retryPolicy.js';
import {
  isAccessTokenExpired,
  needsAccessTokenRefresh,
  type OAuthRefreshResult,
  type OAuthTokenInfo,
  type RefreshFailureReason,
} from '../domain/token.js';
import type { Provider, ProviderTokens } from '../providers/provider.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { OutboundGate } from './outboundGate.js';

export interface EnsureResult {
  account: SocialAccount;
  /** null when the stored token was good enough and nothing was refreshed (the seed's contract). */
  result: OAuthRefreshResult | null;
}

export interface EnsureOptions {
  /** Refresh when the token expires within this many seconds (default: config). */
  thresholdSeconds?: number;
  /** The token must still be valid at this time (epoch ms): warm-up for a scheduled post. */
  validAt?: number | null;
}

/** Told after a ledger event has been committed, never before: save first, then announce. */
export type OAuthEventListener = (event: NewOAuthEvent, account: SocialAccount) => void;

export interface TokenServiceDeps {
  accounts: AccountRepository;
  ledger: LedgerRepository;
  providers: Partial<Record<ProviderName, Provider>>;
  clock: Clock;
  settings: RefreshSettings;
  logger: Logger;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Names this process in refresh leases. */
  instanceId?: string;
  /** Per-platform concurrency and rate limits on calls to the platform (none when absent). */
  outbound?: OutboundGate;
}

export interface RefreshOptions {
  /**
   * Refresh only if the account is still at this version: the background refresher claimed it at
   * that version, and a newer one means someone refreshed (or reconnected) it since. `result` is
   * then null, and the platform is not called.
   */
  expectedVersion?: number;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The refresh lease this process holds on an account, as far as it knows. */
interface HeldLease {
  /** When it lapses unless renewed (epoch ms). */
  until: number;
  /** Set once a save released it in the same statement. */
  released: boolean;
}

/** On-demand callers wait this long after a failed refresh, doubling per failure, up to the max. */
const COOL_DOWN_BASE_MS = 5_000;
const COOL_DOWN_MAX_MS = 5 * 60_000;

/** Provider error codes for a request that may have reached the platform but got no answer. */
const UNANSWERED_CODES = new Set(['timeout', 'network_error']);

/**
 * A commit of freshly issued tokens is retried at least this many times, and beyond that for as
 * long as our lease still holds (nobody else can refresh the account meanwhile), up to the cap:
 * a database restart must not cost a rotated TikTok refresh token.
 */
const SAVE_ATTEMPTS = 5;
const SAVE_ATTEMPTS_CAP = 120;
const SAVE_RETRY_MAX_DELAY_MS = 1000;

/**
 * Keeps access tokens valid: checks expiry, and refreshes through the platform exactly once per
 * expiry, however many callers ask at the same moment.
 *
 * Two layers make "exactly once" hold:
 * - in this process, concurrent callers for one account share one in-flight promise;
 * - across processes, the refresher must hold the account's lease in the database (a conditional
 *   UPDATE, see AccountRepository.tryAcquireRefreshLease). Others poll the row's version and take
 *   the new token when it appears. A lease expires by itself, so a crashed refresher blocks an
 *   account for at most `leaseSeconds`; it is renewed before every call to the platform and a
 *   refresher that lost it stops before spending a (single-use, on TikTok) refresh token.
 */
export class TokenService {
  private readonly inFlight = new Map<string, Promise<EnsureResult>>();
  private readonly coolDowns = new Map<
    string,
    { until: number; result: OAuthRefreshResult; failures: number }
  >();
  private readonly listeners: OAuthEventListener[] = [];
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  readonly instanceId: string;

  constructor(private readonly deps: TokenServiceDeps) {
    this.sleep = deps.sleep ?? defaultSleep;
    this.random = deps.random ?? Math.random;
    this.instanceId = deps.instanceId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  onEvent(listener: OAuthEventListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  async getAccountOAuthInfo(accountId: string): Promise<OAuthTokenInfo | null> {
    const account = await this.deps.accounts.findById(accountId);
    if (!account || (account.accessToken === null && account.refreshToken === null)) return null;
    return toTokenInfo(account);
  }

  /**
   * Returns the account with a valid access token, refreshing first when it is expired or close.
   * `result` is null when no refresh was needed; otherwise it says what the refresh did. If a
   * refresh fails transiently while the old token is still valid, the account still carries it.
   */
  async ensureValidAccessToken(accountId: string, options: EnsureOptions = {}): Promise<EnsureResult> {
    const account = await this.requireAccount(accountId);
    if (account.status !== 'active') return { account, result: this.inactiveResult(account) };
    if (!this.isStale(account, options)) return { account, result: null };
    const cooling = this.coolingDown(account);
    if (cooling) return { account, result: cooling };
    return this.singleFlight(`${accountId}:ensure`, () =>
      this.refreshUnderLease(account, { onlyIfStale: options }),
    );
  }

  /** Refreshes now, whatever the expiry (the seed's refreshOAuthToken; CLI `refresh`). */
  async refreshOAuthToken(accountId: string, options: RefreshOptions = {}): Promise<EnsureResult> {
    const account = await this.requireAccount(accountId);
    if (account.status !== 'active') return { account, result: this.inactiveResult(account) };
    if (options.expectedVersion !== undefined && account.version !== options.expectedVersion) {
      return { account, result: null };
    }
    // Keyed apart from `ensure`: a forced refresh must not be answered "nothing needed".
    return this.singleFlight(`${accountId}:force`, () =>
      this.refreshUnderLease(account, { onlyIfStale: null }),
    );
  }

  /**
   * Issue 13: a platform refused the token a forced refresh had just issued (a publishing request's
   * second auth failure). The grant is dead for that use: the account is flagged `needs_reauth`
   * with a ledger row, as a refused refresh flags it. `expectedVersion` is the version that token
   * came from: a reconnect since then is a new grant and is left alone.
   */
  async markRefusedAfterRefresh(
    accountId: string,
    expectedVersion: number,
    error: OAuthProviderError | null,
  ): Promise<EnsureResult> {
    const account = await this.requireAccount(accountId);
    if (account.status !== 'active') return { account, result: this.inactiveResult(account) };
    if (account.version !== expectedVersion) return { account, result: this.sharedSuccess(account) };
    return this.markNeedsReauth(
      account,
      'needs_reauth',
      error?.providerErrorCode ?? null,
      0,
      error ?? undefined,
      {
        refusedBy: 'publishing',
      },
    );
  }

  private async requireAccount(accountId: string): Promise<SocialAccount> {
    const account = await this.deps.accounts.findById(accountId);
    if (!account) throw new AccountNotFound(accountId);
    return account;
  }

  private isStale(account: SocialAccount, options: EnsureOptions): boolean {
    const now = this.deps.clock.now();
    const thresholdSeconds = options.thresholdSeconds ?? this.deps.settings.thresholdSeconds;
    let validAt = options.validAt ?? null;
    if (validAt !== null && account.expiresAt !== null && account.tokenIssuedAt !== null) {
      // A token refreshed now would last about as long as the current one did. If even that
      // would not cover `validAt`, refreshing now only burns a refresh (and would repeat on every
      // call): judge by now, and let a later call, closer to the time, do it.
      const lifetime = account.expiresAt - account.tokenIssuedAt;
      if (validAt + thresholdSeconds * 1000 >= now + lifetime) validAt = null;
    }
    return needsAccessTokenRefresh(account, { thresholdSeconds, now, validAt });
  }

  private singleFlight(key: string, run: () => Promise<EnsureResult>): Promise<EnsureResult> {
    const existing = this.inFlight.get(key);
    if (existing) return existing;
    const promise = run().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  /**
   * Takes the lease, or waits for whoever holds it. `onlyIfStale` (null for a forced refresh) makes
   * a caller that gets the lease after someone else's refresh use that result instead of refreshing
   * again.
   */
  private async refreshUnderLease(
    seen: SocialAccount,
    mode: { onlyIfStale: EnsureOptions | null },
  ): Promise<EnsureResult> {
    const { accounts, clock, settings } = this.deps;
    const leaseMs = settings.leaseSeconds * 1000;
    const deadline = clock.now() + settings.waitTimeoutMs;
    let pollMs = 20;
    for (;;) {
      const lease = await accounts.tryAcquireRefreshLease(seen.id, this.instanceId, clock.now(), leaseMs);
      if (lease !== null) {
        const held: HeldLease = { until: lease.until, released: false };
        try {
          // The row as it stands under our lease.
          const current = lease.account;
          if (current.status !== 'active') return { account: current, result: this.inactiveResult(current) };
          // New tokens were written since this caller looked (another refresher, a reconnect):
          // they are the refresh it asked for.
          if (current.version !== seen.version)
            return { account: current, result: this.sharedSuccess(current) };
          if (mode.onlyIfStale !== null && !this.isStale(current, mode.onlyIfStale)) {
            return { account: current, result: null };
          }
          // A lapsed lease that was never released: its holder died (or stalled) mid-refresh,
          // possibly after the platform had rotated the refresh token and before the new one was
          // committed. A crash leaves no ledger row; this is how it is noticed.
          return await this.performRefresh(current, held, lease.previousOwner !== null);
        } finally {
          // A successful save releases the lease in the same statement.
          if (!held.released)
            await accounts.releaseRefreshLease(seen.id, this.instanceId).catch((error) => {
              // The lease expires by itself; a failed release only delays the next refresher.
              this.deps.logger.warn(
                { accountId: seen.id, err: describe(error) },
                'could not release refresh lease',
              );
            });
        }
      }
      // Someone else holds the lease: watch the row for their result.
      await this.sleep(pollMs + Math.floor(this.random() * pollMs));
      pollMs = Math.min(pollMs * 2, 250);
      const state = await accounts.readVersion(seen.id);
      if (!state) throw new AccountNotFound(seen.id);
      if (state.version !== seen.version) {
        const current = await this.requireAccount(seen.id);
        if (current.status !== 'active') return { account: current, result: this.inactiveResult(current) };
        return { account: current, result: this.sharedSuccess(current) };
      }
      if (clock.now() >= deadline) {
        const current = await this.requireAccount(seen.id);
        return { account: current, result: this.failure(current, 'refresh_in_progress', null, 0) };
      }
    }
  }

  private async performRefresh(
    account: SocialAccount,
    lease: HeldLease,
    afterAbandonedLease = false,
  ): Promise<EnsureResult> {
    const { clock, settings } = this.deps;
    const provider = this.deps.providers[account.provider];
    if (!provider) {
      return this.recordFailure(
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
      return this.markNeedsReauth(account, 'no_refresh_token', null, 0);
    }
    if (capabilities.refreshesAccessTokenItself && isAccessTokenExpired(account, clock)) {
      // Instagram cannot refresh an expired token: it is lost, the user must log in again.
      return this.markNeedsReauth(account, 'needs_reauth', 'token_expired', 0);
    }
    const minimumAgeMs = capabilities.minimumTokenAgeForRefreshSeconds * 1000;
    if (
      minimumAgeMs > 0 &&
      account.tokenIssuedAt !== null &&
      clock.now() - account.tokenIssuedAt < minimumAgeMs
    ) {
      // Instagram refuses tokens younger than 24 h; asking would only earn an error.
      return { account, result: this.failure(account, 'token_too_young', null, 0) };
    }

    let lastError: OAuthProviderError | null = null;
    // A request that got no answer may still have been processed: with rotating refresh tokens
    // (TikTok) the retry then sends a spent token and gets invalid_grant. That loss cannot be
    // undone, but it is recorded as such in the ledger so that it can be counted.
    let unansweredAttempts = 0;
    for (let attempt = 1; attempt <= settings.maxAttempts; attempt++) {
      // Waiting for the platform's rate limit comes first, so that the lease is renewed after it.
      const release = this.deps.outbound ? await this.deps.outbound.acquire(account.provider) : null;
      // Renewing before the call means a refresher whose lease lapsed (a long stall, a long wait
      // for the rate limit) stops here instead of spending a refresh token that another process may
      // be spending too. A lease with more than half its time left (just taken) needs no renewal:
      // the call's timeout is at most half the lease (enforced by loadConfig).
      const leaseMs = settings.leaseSeconds * 1000;
      const renewAt = clock.now();
      if (lease.until - renewAt < leaseMs / 2) {
        let renewed: boolean;
        try {
          renewed = await this.deps.accounts.tryRenewRefreshLease(
            account.id,
            this.instanceId,
            renewAt,
            leaseMs,
          );
        } catch (error) {
          release?.();
          throw error;
        }
        if (!renewed) {
          release?.();
          return { account, result: this.failure(account, 'refresh_in_progress', null, attempt - 1) };
        }
        lease.until = renewAt + leaseMs;
      }
      try {
        let tokens: ProviderTokens;
        try {
          tokens = await provider.refreshAccessToken({
            accessToken: account.accessToken,
            refreshToken: account.refreshToken,
          });
        } finally {
          release?.();
        }
        return await this.commitRefresh(account, tokens, attempt, lease);
      } catch (error) {
        if (!(error instanceof OAuthProviderError)) throw error;
        lastError = error;
        if (error instanceof ReauthorizationRequired) {
          const possiblyLostInFlight =
            capabilities.rotatesRefreshToken &&
            (unansweredAttempts > 0 ||
              afterAbandonedLease ||
              (attempt === 1 && (await this.lastRefreshWentUnanswered(account.id))));
          return this.markNeedsReauth(account, 'needs_reauth', error.providerErrorCode, attempt, error, {
            possiblyLostInFlight,
          });
        }
        if (UNANSWERED_CODES.has(error.providerErrorCode ?? '')) unansweredAttempts++;
        if (
          capabilities.rotatesRefreshToken &&
          error instanceof ProviderResponseInvalid &&
          (error.httpStatus ?? 0) >= 200 &&
          (error.httpStatus ?? 0) < 300
        ) {
          // A 2xx means the platform accepted (and spent) the refresh token; resending it can only
          // earn invalid_grant. Stop, and leave the account to be judged by the next refresh.
          unansweredAttempts++;
          break;
        }
        if (error instanceof ProviderConfigError) {
          return this.recordFailure(account, 'provider_config_error', error, attempt, error.message);
        }
        if (!isRetryable(error) || attempt === settings.maxAttempts) break;
        const retryAfterMs = error instanceof RateLimited ? error.retryAfterMs : null;
        const delay = nextAttemptDelayMs(
          attempt,
          retryAfterMs,
          { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
          this.random,
        );
        // A Retry-After longer than we may hold the account is reported, not slept through.
        if (delay >= settings.leaseSeconds * 1000) break;
        this.deps.logger.info(
          { accountId: account.id, provider: account.provider, attempt, delayMs: delay, err: error.toJSON() },
          'refresh failed, retrying',
        );
        await this.sleep(delay);
      }
    }
    const reason: RefreshFailureReason = lastError instanceof RateLimited ? 'rate_limited' : 'provider_error';
    // Carried forward: the invalid_grant that may follow is then still known as a possible loss.
    const carried =
      capabilities.rotatesRefreshToken && afterAbandonedLease ? { afterAbandonedLease: true } : {};
    return this.recordFailure(
      account,
      reason,
      lastError,
      settings.maxAttempts,
      lastError?.message ?? reason,
      carried,
    );
  }

  /** Whether the account's last refresh ended without an answer (so the platform may have rotated). */
  private async lastRefreshWentUnanswered(accountId: string): Promise<boolean> {
    const last = await this.deps.ledger.latest(accountId);
    return (
      last?.type === 'refresh_failed' &&
      (UNANSWERED_CODES.has(last.providerErrorCode ?? '') || last.detail?.afterAbandonedLease === true)
    );
  }

  private async commitRefresh(
    account: SocialAccount,
    tokens: ProviderTokens,
    attempts: number,
    lease: HeldLease,
  ): Promise<EnsureResult> {
    const now = this.deps.clock.now();
    const update = {
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: tokens.expiresInSeconds === null ? null : now + tokens.expiresInSeconds * 1000,
      refreshTokenExpiresAt:
        tokens.refreshTokenExpiresInSeconds === null
          ? null
          : now + tokens.refreshTokenExpiresInSeconds * 1000,
      scopes: tokens.scopes,
      tokenIssuedAt: now,
    };
    // The platform has issued new tokens (on TikTok it has spent the old refresh token): losing
    // this write loses the account, so a failing database (a restart, a full disk) is retried
    // while our lease keeps every other refresher away.
    const refreshedEvent: NewOAuthEvent = {
      accountId: account.id,
      type: 'refreshed',
      detail: { attempts, expiresAt: update.expiresAt, rotatedRefreshToken: tokens.refreshToken !== null },
    };
    let saved: SocialAccount | null = null;
    for (let attempt = 1; saved === null; attempt++) {
      try {
        saved = await this.deps.accounts.saveTokens(account.id, update, now, account.version, {
          current: account,
          releaseLeaseOf: this.instanceId,
          // In the same commit: a refresh is in the ledger exactly when its tokens are stored.
          event: refreshedEvent,
        });
        if (saved !== null) lease.released = true;
        else {
          const current = await this.requireAccount(account.id);
          // Our own earlier try may have committed (with its ledger row) before its connection
          // failed.
          if (current.accessToken === tokens.accessToken) {
            saved = current;
            break;
          }
          // Revoked or reconnected while the refresh was on the wire: that change wins, and the
          // tokens just issued for the old grant are dropped.
          this.deps.logger.warn(
            { accountId: account.id, provider: account.provider, status: current.status },
            'account changed during refresh; refreshed tokens discarded',
          );
          return {
            account: current,
            result: current.status === 'active' ? this.sharedSuccess(current) : this.inactiveResult(current),
          };
        }
      } catch (error) {
        const delay = Math.min(100 * 2 ** attempt, SAVE_RETRY_MAX_DELAY_MS);
        const leaseLeft = lease.until - this.deps.clock.now() - delay;
        if (attempt >= SAVE_ATTEMPTS && (leaseLeft <= 0 || attempt >= SAVE_ATTEMPTS_CAP)) {
          this.deps.logger.error(
            { accountId: account.id, provider: account.provider, err: describe(error) },
            'refreshed tokens could not be saved; the account may need re-authorization',
          );
          throw error;
        }
        await this.sleep(delay);
      }
    }
    this.coolDowns.delete(account.id);
    this.tell(refreshedEvent, saved);
    return {
      account: saved,
      result: {
        success: true,
        provider: account.provider,
        reason: null,
        providerErrorCode: null,
        newAccessToken: saved.accessToken,
        newExpiresAt: saved.expiresAt,
        retryAt: null,
        attempts,
      },
    };
  }

  private async markNeedsReauth(
    account: SocialAccount,
    reason: 'needs_reauth' | 'no_refresh_token',
    providerErrorCode: string | null,
    attempts: number,
    error?: OAuthProviderError,
    extraDetail: Record<string, unknown> = {},
  ): Promise<EnsureResult> {
    const now = this.deps.clock.now();
    const message = error
      ? `${error.code}: ${error.providerErrorCode ?? ''} ${error.providerErrorDescription ?? ''}`.trim()
      : reason;
    const changed = await this.deps.accounts.setStatus(
      account.id,
      'needs_reauth',
      message,
      now,
      account.version,
    );
    const updated = await this.requireAccount(account.id);
    if (!changed) {
      // Someone reconnected or refreshed meanwhile (our invalid_grant was for a grant that is
      // gone): do not flag a healthy account.
      return {
        account: updated,
        result: updated.status === 'active' ? this.sharedSuccess(updated) : this.inactiveResult(updated),
      };
    }
    await this.announce(updated, {
      accountId: account.id,
      type: 'needs_reauth',
      reason,
      providerErrorCode,
      detail: error
        ? { httpStatus: error.httpStatus, attempts, ...extraDetail }
        : { attempts, ...extraDetail },
    });
    this.deps.logger.warn(
      { accountId: account.id, provider: account.provider, reason, providerErrorCode },
      'account needs re-authorization',
    );
    return { account: updated, result: this.failure(updated, reason, providerErrorCode, attempts) };
  }

  private async recordFailure(
    account: SocialAccount,
    reason: RefreshFailureReason,
    error: OAuthProviderError | null,
    attempts: number,
    message: string,
    extraDetail: Record<string, unknown> = {},
  ): Promise<EnsureResult> {
    const now = this.deps.clock.now();
    await this.deps.accounts.recordRefreshError(account.id, message, now);
    const updated = (await this.deps.accounts.findById(account.id))!;
    await this.announce(updated, {
      accountId: account.id,
      type: 'refresh_failed',
      reason,
      providerErrorCode: error?.providerErrorCode ?? null,
      detail: { attempts, httpStatus: error?.httpStatus ?? null, ...extraDetail },
    });
    this.deps.logger.warn(
      { accountId: account.id, provider: account.provider, reason, attempts, err: error?.toJSON() ?? null },
      'refresh failed',
    );
    const result = this.failure(updated, reason, error?.providerErrorCode ?? null, attempts);
    if (error instanceof RateLimited && error.retryAfterMs !== null)
      result.retryAt = now + error.retryAfterMs;
    this.startCoolDown(account.id, result, now);
    return { account: updated, result };
  }

  /**
   * After a failed refresh, callers of ensureValidAccessToken get the failure again (with the still
   * valid old token) instead of a new round of calls, until a backoff that grows with each failure
   * has passed or the platform's Retry-After is over. Without it, a publishing engine asking before
   * every post would hammer a failing platform (peers have made 60,000 failed calls a day for one
   * account). Per process; the background refresher keeps its own schedule in the database.
   */
  private coolingDown(account: SocialAccount): OAuthRefreshResult | null {
    const coolDown = this.coolDowns.get(account.id);
    const now = this.deps.clock.now();
    if (!coolDown || coolDown.until <= now) return null;
    // An expired token is worth another try, unless the platform asked us to wait.
    if (isAccessTokenExpired(account, this.deps.clock) && coolDown.result.reason !== 'rate_limited')
      return null;
    return { ...coolDown.result, attempts: 0, retryAt: coolDown.until };
  }

  private startCoolDown(accountId: string, result: OAuthRefreshResult, now: number): void {
    const failures = (this.coolDowns.get(accountId)?.failures ?? 0) + 1;
    const backoff = Math.min(COOL_DOWN_MAX_MS, COOL_DOWN_BASE_MS * 2 ** (failures - 1));
    const until = Math.max(now + backoff, result.retryAt ?? 0);
    // Tells the caller when asking again can lead to a new call to the platform.
    result.retryAt = until;
    this.coolDowns.set(accountId, { until, result, failures });
  }

  private async announce(account: SocialAccount, event: NewOAuthEvent): Promise<void> {
    try {
      await this.deps.ledger.append(event, this.deps.clock.now());
    } catch (error) {
      // The tokens are already committed: a ledger hiccup must not turn that into a failure.
      this.deps.logger.error(
        { accountId: account.id, type: event.type, err: describe(error) },
        'ledger append failed',
      );
    }
    this.tell(event, account);
  }

  /** Tells the listeners of an event that is already in the ledger. */
  private tell(event: NewOAuthEvent, account: SocialAccount): void {
    for (const listener of this.listeners) {
      try {
        listener(event, account);
      } catch (error) {
        this.deps.logger.error({ accountId: account.id, err: describe(error) }, 'event listener failed');
      }
    }
  }

  private inactiveResult(account: SocialAccount): OAuthRefreshResult {
    return this.failure(
      account,
      account.status === 'needs_reauth' ? 'needs_reauth' : 'account_not_active',
      null,
      0,
    );
  }

  private sharedSuccess(account: SocialAccount): OAuthRefreshResult {
    return {
      success: true,
      provider: account.provider,
      reason: null,
      providerErrorCode: null,
      newAccessToken: account.accessToken,
      newExpiresAt: account.expiresAt,
      retryAt: null,
      attempts: 0,
    };
  }

  private failure(
    account: SocialAccount,
    reason: RefreshFailureReason,
    providerErrorCode: string | null,
    attempts: number,
  ): OAuthRefreshResult {
    return {
      success: false,
      provider: account.provider,
      reason,
      providerErrorCode,
      newAccessToken: null,
      newExpiresAt: null,
      retryAt: null,
      attempts,
    };
  }
}

export function toTokenInfo(account: SocialAccount): OAuthTokenInfo {
  return {
    accountId: account.id,
    provider: account.provider,
    accessToken: account.accessToken,
    refreshToken: account.refreshToken,
    expiresAt: account.expiresAt,
    refreshTokenExpiresAt: account.refreshTokenExpiresAt,
    scopes: account.scopes,
    tokenIssuedAt: account.tokenIssuedAt,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
