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
  TransientProviderError,
} from '../domain/errors.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import { type PossibleLossCause, possibleLossCause, UNANSWERED_CODES } from '../domain/lossDetection.js';
import type { ProviderName } from '../domain/providerName.js';
import { nextAttemptDelayMs } from '../domain/retryPolicy.js';
import {
  isAccessTokenExpired,
  needsAccessTokenRefresh,
  type OAuthRefreshResult,
  type OAuthTokenInfo,
  type RefreshFailureReason,
} from '../domain/token.js';
import { capabilitiesOf } from '../platforms/capabilities.js';
import type { Provider, ProviderCapabilities, RefreshedTokens } from '../platforms/provider.js';
import type { AccountRepository, TokenUpdate } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { OutboundGate } from './outboundGate.js';
import type { JournalEntry, RefreshJournal } from './refreshJournal.js';

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
  /** Keeps issued tokens the database refused until a later save (none: they are lost, and flagged). */
  journal?: RefreshJournal;
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

/** Cool-downs whose backoff ended this long ago no longer double: they are dropped. */
const COOL_DOWN_FORGET_AFTER_MS = COOL_DOWN_MAX_MS;

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
          // Tokens a refused save left in the journal are the living grant: stored before anything
          // else, and never refreshed over (that would spend them).
          const journaled = await this.settleJournal(current.id);
          if (journaled !== null) {
            held.released = true;
            return journaled;
          }
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
    // Why this refresh may already have spent the token: a lease taken over from a holder that
    // never released it, a try without an answer, or a server error (the platform may fail after
    // it has rotated). Kept for the invalid_grant that may follow, here or at a later refresh.
    let lossCause: PossibleLossCause | null = afterAbandonedLease ? 'abandoned_lease' : null;
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
        return await this.commitRefresh(account, tokens, attempt, lease, capabilities);
      } catch (error) {
        if (!(error instanceof OAuthProviderError)) throw error;
        lastError = error;
        if (error instanceof ReauthorizationRequired) {
          // Judged on everything since the grant was last known good: an earlier unanswered try
          // is not hidden by a later 503 or an unrelated row (keys_rotated).
          const cause = capabilities.rotatesRefreshToken
            ? (lossCause ?? (await this.possibleLossInHistory(account.id)))
            : null;
          return this.markNeedsReauth(account, 'needs_reauth', error.providerErrorCode, attempt, error, {
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
          return this.markNeedsReauth(account, 'needs_reauth', 'unreadable_success', attempt, error, {
            possiblyLostInFlight: true,
            possibleLossCause: 'unreadable_success',
            unreadableSuccess: true,
          });
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
    const carried: Record<string, unknown> =
      capabilities.rotatesRefreshToken && lossCause !== null ? { possibleLossCause: lossCause } : {};
    if (capabilities.rotatesRefreshToken && afterAbandonedLease) carried.afterAbandonedLease = true;
    return this.recordFailure(
      account,
      reason,
      lastError,
      settings.maxAttempts,
      lastError?.message ?? reason,
      carried,
    );
  }

  /** Why the ledger says the grant may have been lost since it was last known good, or null. */
  private async possibleLossInHistory(accountId: string) {
    return possibleLossCause(await this.deps.ledger.sinceLastConfirmedGrant(accountId));
  }

  private async commitRefresh(
    account: SocialAccount,
    tokens: RefreshedTokens,
    attempts: number,
    lease: HeldLease,
    capabilities: ProviderCapabilities,
  ): Promise<EnsureResult> {
    const now = this.deps.clock.now();
    const update = tokenUpdateOf(account, tokens, now);
    const detail: Record<string, unknown> = {
      attempts,
      expiresAt: update.expiresAt,
      rotatedRefreshToken: tokens.refreshToken !== null,
    };
    // Lifetimes the answer gave that were replaced (missing, unreadable, past the documented maximum).
    if (tokens.lifetimeNotes && tokens.lifetimeNotes.length > 0) detail.lifetimeNotes = tokens.lifetimeNotes;
    if (tokens.accessToken === null) detail.accessTokenMissing = true;
    // The platform has issued new tokens (on TikTok it has spent the old refresh token): losing
    // this write loses the account. A failing database (a restart, a full disk) is retried while
    // our lease keeps every other refresher away, and from the first failure on the tokens are
    // also in the journal, so that giving up loses nothing.
    const entry: JournalEntry = {
      accountId: account.id,
      provider: account.provider,
      expectedVersion: account.version,
      spentCredential: credentialOf(account, capabilities),
      update,
      detail,
      receivedAt: now,
    };
    let journaled = false;
    let stored: StoreOutcome | null = null;
    for (let attempt = 1; stored === null; attempt++) {
      try {
        stored = await this.storeIssuedTokens(account, entry, capabilities);
      } catch (error) {
        if (!journaled && this.deps.journal) {
          try {
            await this.deps.journal.write(entry);
            journaled = true;
          } catch (journalError) {
            this.deps.logger.error(
              { accountId: account.id, err: describe(journalError) },
              'refreshed tokens could not be written to the refresh journal',
            );
          }
        }
        const delay = Math.min(100 * 2 ** attempt, SAVE_RETRY_MAX_DELAY_MS);
        const leaseLeft = lease.until - this.deps.clock.now() - delay;
        if (attempt >= SAVE_ATTEMPTS && (leaseLeft <= 0 || attempt >= SAVE_ATTEMPTS_CAP)) {
          await this.giveUpSaving(account, journaled, error);
          // Deliberately not released: a lease that lapses unreleased tells the next refresher
          // (here or in another process) that this refresh may have spent the token.
          lease.released = true;
          throw error;
        }
        await this.sleep(delay);
      }
    }
    if (journaled) await this.forgetJournaled(entry);
    if (stored.kind === 'superseded') {
      // Revoked or reconnected while the refresh was on the wire: that change wins, and the
      // tokens just issued for the old grant are dropped.
      const current = stored.account;
      this.deps.logger.warn(
        { accountId: account.id, provider: account.provider, status: current?.status ?? 'deleted' },
        'account changed during refresh; refreshed tokens discarded',
      );
      if (current === null) throw new AccountNotFound(account.id);
      return {
        account: current,
        result: current.status === 'active' ? this.sharedSuccess(current) : this.inactiveResult(current),
      };
    }
    lease.released = true;
    const saved = stored.account;
    this.coolDowns.delete(account.id);
    if (stored.event !== null) this.tell(stored.event, saved);
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

  /**
   * Stores issued tokens with a compare-and-set on the version they were refreshed from. When the
   * row moved on meanwhile:
   * - our own earlier try committed (its connection failed after the commit): done;
   * - on a rotating platform, another process spent the old refresh token after our lease lapsed
   *   (a stall, a clock running ahead), got invalid_grant and set needs_reauth: our tokens are the
   *   living grant, so they are stored and the account is active again (issue 10, item 4);
   * - anything else (a reconnect, a revoke, a newer refresh) wins: ours are superseded.
   */
  private async storeIssuedTokens(
    from: SocialAccount,
    entry: JournalEntry,
    capabilities: ProviderCapabilities,
  ): Promise<StoreOutcome> {
    const { accounts, clock } = this.deps;
    const event: NewOAuthEvent = { accountId: from.id, type: 'refreshed', detail: entry.detail };
    const saved = await accounts.saveTokens(from.id, entry.update, clock.now(), entry.expectedVersion, {
      current: from,
      releaseLeaseOf: this.instanceId,
      // In the same commit: a refresh is in the ledger exactly when its tokens are stored.
      event,
    });
    if (saved !== null) return { kind: 'saved', account: saved, event };
    for (let round = 0; round < 3; round++) {
      const current = await accounts.findById(from.id);
      if (current === null) return { kind: 'superseded', account: null };
      if (holdsIssuedTokens(current, entry.update)) return { kind: 'saved', account: current, event: null };
      const revivable =
        capabilities.rotatesRefreshToken &&
        current.status === 'needs_reauth' &&
        entry.spentCredential !== null &&
        credentialOf(current, capabilities) === entry.spentCredential;
      if (!revivable) return { kind: 'superseded', account: current };
      const revival: NewOAuthEvent = {
        accountId: from.id,
        type: 'refreshed',
        detail: { ...entry.detail, reactivated: true, previousStatus: 'needs_reauth' },
      };
      const revived = await accounts.saveTokens(from.id, entry.update, clock.now(), current.version, {
        current,
        releaseLeaseOf: this.instanceId,
        event: revival,
        reviveFromNeedsReauth: true,
      });
      if (revived !== null) {
        this.deps.logger.warn(
          { accountId: from.id, provider: from.provider },
          'another process flagged the account after spending its old refresh token; the tokens this one holds are the living grant: stored, account active again',
        );
        return { kind: 'saved', account: revived, event: revival };
      }
    }
    return { kind: 'superseded', account: await accounts.findById(from.id) };
  }

  /** The save failed for longer than the lease: say so wherever it can still be said. */
  private async giveUpSaving(account: SocialAccount, journaled: boolean, error: unknown): Promise<void> {
    this.deps.logger.error(
      { accountId: account.id, provider: account.provider, journaled, err: describe(error) },
      journaled
        ? 'refreshed tokens could not be saved; kept in the refresh journal until the database takes them'
        : 'refreshed tokens could not be saved; the account may need re-authorization',
    );
    // Usually refused too (the database is what failed), but when it is not, the next
    // invalid_grant is flagged from the ledger as well as from the lapsed lease.
    await this.deps.ledger
      .append(
        {
          accountId: account.id,
          type: 'refresh_failed',
          reason: 'tokens_not_saved',
          detail: { unsavedTokens: true, journaled },
        },
        this.deps.clock.now(),
      )
      .catch(() => {});
  }

  /**
   * Stores the account's journaled tokens, if any: at start (replayJournal) and before the next
   * refresh of the account. Returns the outcome, or null when nothing was waiting.
   */
  private async settleJournal(accountId: string): Promise<EnsureResult | null> {
    const journal = this.deps.journal;
    if (!journal || !(await journal.has(accountId))) return null;
    const entry = await journal.read(accountId);
    if (entry === null) return null;
    const provider = this.deps.providers[entry.provider];
    const capabilities = provider?.capabilities ?? capabilitiesOf(entry.provider);
    const from = await this.deps.accounts.findById(accountId);
    if (from === null) {
      await this.forgetJournaled(entry);
      return null;
    }
    // Compared with the version the tokens were refreshed from, not with the row as it is now.
    const stored = await this.storeIssuedTokens(
      { ...from, version: entry.expectedVersion },
      { ...entry, detail: { ...entry.detail, fromJournal: true } },
      capabilities,
    );
    await this.forgetJournaled(entry);
    if (stored.kind === 'superseded') {
      this.deps.logger.warn(
        { accountId, provider: entry.provider },
        'journaled tokens were superseded (reconnected, revoked or refreshed since); dropped',
      );
      return null;
    }
    this.deps.logger.info({ accountId, provider: entry.provider }, 'journaled refreshed tokens stored');
    this.coolDowns.delete(accountId);
    if (stored.event !== null) this.tell(stored.event, stored.account);
    return { account: stored.account, result: this.sharedSuccess(stored.account) };
  }

  /**
   * Stores every journaled token set this process's data folder holds (at start). Entries the
   * database still refuses stay for the next try; returns how many were stored.
   */
  async replayJournal(): Promise<number> {
    const journal = this.deps.journal;
    if (!journal) return 0;
    let stored = 0;
    let accountIds: string[];
    try {
      accountIds = await journal.accountIds();
    } catch (error) {
      // An unreadable journal folder must not keep the service from starting: said, loudly.
      this.deps.logger.error(
        { directory: journal.directory, err: describe(error) },
        'the refresh journal could not be read; tokens it may hold are not stored yet',
      );
      return 0;
    }
    for (const accountId of accountIds) {
      try {
        if ((await this.settleJournal(accountId)) !== null) stored++;
      } catch (error) {
        this.deps.logger.error(
          { accountId, err: describe(error) },
          'journaled refreshed tokens could not be stored yet; kept for the next try',
        );
      }
    }
    return stored;
  }

  private async forgetJournaled(entry: JournalEntry): Promise<void> {
    await this.deps.journal?.remove(entry.accountId, entry).catch((error) => {
      this.deps.logger.warn(
        { accountId: entry.accountId, err: describe(error) },
        'could not remove a settled refresh journal entry',
      );
    });
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
    const event: NewOAuthEvent = {
      accountId: account.id,
      type: 'needs_reauth',
      reason,
      providerErrorCode,
      detail: error
        ? { httpStatus: error.httpStatus, attempts, ...extraDetail }
        : { attempts, ...extraDetail },
    };
    // The status, its ledger event and the outgoing notification (outbox) in one commit.
    const changed = await this.deps.accounts.setStatus(
      account.id,
      'needs_reauth',
      message,
      now,
      account.version,
      event,
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
    this.tell(event, updated);
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
    this.pruneCoolDowns(now);
    const failures = (this.coolDowns.get(accountId)?.failures ?? 0) + 1;
    const backoff = Math.min(COOL_DOWN_MAX_MS, COOL_DOWN_BASE_MS * 2 ** (failures - 1));
    const until = Math.max(now + backoff, result.retryAt ?? 0);
    // Tells the caller when asking again can lead to a new call to the platform.
    result.retryAt = until;
    this.coolDowns.set(accountId, { until, result, failures });
  }

  private lastCoolDownSweep = Number.NEGATIVE_INFINITY;

  /**
   * Forgets cool-downs that ended long enough ago that a new failure should start the backoff
   * afresh: without this, every account that ever failed stayed in memory for the life of the
   * process. At most one sweep a minute.
   */
  private pruneCoolDowns(now: number): void {
    if (now - this.lastCoolDownSweep < 60_000) return;
    this.lastCoolDownSweep = now;
    for (const [accountId, coolDown] of this.coolDowns) {
      if (coolDown.until + COOL_DOWN_FORGET_AFTER_MS <= now) this.coolDowns.delete(accountId);
    }
  }

  /** How many accounts this process keeps a cool-down for (a gauge; also what the pruning test reads). */
  get coolDownCount(): number {
    return this.coolDowns.size;
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

/** What became of issued tokens: stored (with the ledger row written, if this try wrote one), or not. */
type StoreOutcome =
  | { kind: 'saved'; account: SocialAccount; event: NewOAuthEvent | null }
  | { kind: 'superseded'; account: SocialAccount | null };

/** The credential a refresh spends: the refresh token, or on Instagram the access token itself. */
function credentialOf(account: SocialAccount, capabilities: ProviderCapabilities): string | null {
  return capabilities.refreshesAccessTokenItself ? account.accessToken : account.refreshToken;
}

/** The row already holds these tokens (an earlier try committed before its connection failed). */
function holdsIssuedTokens(account: SocialAccount, update: TokenUpdate): boolean {
  return (
    account.accessToken === update.accessToken &&
    (update.refreshToken === null || account.refreshToken === update.refreshToken)
  );
}

/**
 * What a 2xx refresh answer lacks for the account to go on, or null. A rotating platform's answer
 * must carry the new refresh token (the old one is spent); Instagram's, the new access token (it
 * is the credential). Elsewhere whatever came is kept, the rest stays as stored.
 */
function missingCredential(
  tokens: RefreshedTokens,
  account: SocialAccount,
  capabilities: ProviderCapabilities,
): string | null {
  if (capabilities.refreshesAccessTokenItself) return tokens.accessToken === null ? 'an access token' : null;
  if (capabilities.rotatesRefreshToken && tokens.refreshToken === null) return 'a new refresh token';
  if (tokens.accessToken === null && account.accessToken === null) return 'an access token';
  return null;
}

/**
 * The row's new token values. An answer without an access token (but with the new refresh token)
 * keeps the stored access token, its expiry and issue time: it is still valid until then.
 */
function tokenUpdateOf(account: SocialAccount, tokens: RefreshedTokens, now: number): TokenUpdate {
  const hasAccess = tokens.accessToken !== null;
  return {
    accessToken: tokens.accessToken ?? account.accessToken!,
    refreshToken: tokens.refreshToken,
    expiresAt: !hasAccess
      ? account.expiresAt
      : tokens.expiresInSeconds === null
        ? null
        : now + tokens.expiresInSeconds * 1000,
    refreshTokenExpiresAt:
      tokens.refreshTokenExpiresInSeconds === null ? null : now + tokens.refreshTokenExpiresInSeconds * 1000,
    scopes: tokens.scopes,
    tokenIssuedAt: hasAccess ? now : (account.tokenIssuedAt ?? now),
  };
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
