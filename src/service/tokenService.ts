import { randomUUID } from 'node:crypto';
import type { SocialAccount } from '../domain/account.js';
import { AccountNotFound, type OAuthProviderError, RateLimited } from '../domain/errors.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { OAuthTokenInfo, RefreshFailureReason } from '../domain/token.js';
import { capabilitiesOf } from '../platforms/capabilities.js';
import type { ProviderCapabilities, RefreshedTokens } from '../platforms/provider.js';
import { type AttemptHost, performRefresh } from './refreshAttempts.js';
import { RefreshCoolDowns } from './refreshCoolDowns.js';
import type { JournalEntry } from './refreshJournal.js';
import {
  credentialOf,
  describe,
  holdsIssuedTokens,
  inactiveResult,
  isStale,
  refreshFailure,
  type StoreOutcome,
  sharedSuccess,
  tokenUpdateOf,
  toTokenInfo,
} from './refreshOutcomes.js';
import type {
  EnsureOptions,
  EnsureResult,
  HeldLease,
  OAuthEventListener,
  RefreshOptions,
  TokenServiceDeps,
} from './tokenServiceTypes.js';

export { toTokenInfo } from './refreshOutcomes.js';
export type {
  EnsureOptions,
  EnsureResult,
  OAuthEventListener,
  RefreshOptions,
  TokenServiceDeps,
} from './tokenServiceTypes.js';

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
  private readonly coolDowns: RefreshCoolDowns;
  private readonly listeners: OAuthEventListener[] = [];
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  readonly instanceId: string;
  /** The attempt loop's view of this service (see refreshAttempts.ts). */
  private readonly attemptHost: AttemptHost;

  constructor(private readonly deps: TokenServiceDeps) {
    this.coolDowns = new RefreshCoolDowns(deps.clock);
    this.sleep = deps.sleep ?? defaultSleep;
    this.random = deps.random ?? Math.random;
    this.instanceId = deps.instanceId ?? `${process.pid}-${randomUUID().slice(0, 8)}`;
    this.attemptHost = {
      deps,
      instanceId: this.instanceId,
      sleep: (ms) => this.sleep(ms),
      random: () => this.random(),
      recordFailure: (...args) => this.recordFailure(...args),
      markNeedsReauth: (...args) => this.markNeedsReauth(...args),
      commitRefresh: (...args) => this.commitRefresh(...args),
    };
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
    if (account.status !== 'active') return { account, result: inactiveResult(account) };
    if (!isStale(this.deps.clock.now(), this.deps.settings.thresholdSeconds, account, options))
      return { account, result: null };
    const cooling = this.coolDowns.coolingDown(account);
    if (cooling) return { account, result: cooling };
    return this.singleFlight(`${accountId}:ensure`, () =>
      this.refreshUnderLease(account, { onlyIfStale: options }),
    );
  }

  /** Refreshes now, whatever the expiry (the seed's refreshOAuthToken; CLI `refresh`). */
  async refreshOAuthToken(accountId: string, options: RefreshOptions = {}): Promise<EnsureResult> {
    const account = await this.requireAccount(accountId);
    if (account.status !== 'active') return { account, result: inactiveResult(account) };
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
    if (account.status !== 'active') return { account, result: inactiveResult(account) };
    if (account.version !== expectedVersion) return { account, result: sharedSuccess(account) };
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
          if (current.status !== 'active') return { account: current, result: inactiveResult(current) };
          // New tokens were written since this caller looked (another refresher, a reconnect):
          // they are the refresh it asked for.
          if (current.version !== seen.version) return { account: current, result: sharedSuccess(current) };
          if (
            mode.onlyIfStale !== null &&
            !isStale(this.deps.clock.now(), this.deps.settings.thresholdSeconds, current, mode.onlyIfStale)
          ) {
            return { account: current, result: null };
          }
          // A lapsed lease that was never released: its holder died (or stalled) mid-refresh,
          // possibly after the platform had rotated the refresh token and before the new one was
          // committed. A crash leaves no ledger row; this is how it is noticed.
          return await performRefresh(this.attemptHost, current, held, lease.previousOwner !== null);
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
        if (current.status !== 'active') return { account: current, result: inactiveResult(current) };
        return { account: current, result: sharedSuccess(current) };
      }
      if (clock.now() >= deadline) {
        const current = await this.requireAccount(seen.id);
        return { account: current, result: refreshFailure(current, 'refresh_in_progress', null, 0) };
      }
    }
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
      leaseOwner: this.instanceId,
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
        result: current.status === 'active' ? sharedSuccess(current) : inactiveResult(current),
      };
    }
    lease.released = true;
    const saved = stored.account;
    this.coolDowns.clear(account.id);
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
      releaseLeaseOf: entry.leaseOwner ?? this.instanceId,
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
        releaseLeaseOf: entry.leaseOwner ?? this.instanceId,
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
    const entry = journal ? await journal.read(accountId) : null;
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
    this.coolDowns.clear(accountId);
    if (stored.event !== null) this.tell(stored.event, stored.account);
    return { account: stored.account, result: sharedSuccess(stored.account) };
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
        result: updated.status === 'active' ? sharedSuccess(updated) : inactiveResult(updated),
      };
    }
    this.tell(event, updated);
    this.deps.logger.warn(
      { accountId: account.id, provider: account.provider, reason, providerErrorCode },
      'account needs re-authorization',
    );
    return { account: updated, result: refreshFailure(updated, reason, providerErrorCode, attempts) };
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
    const result = refreshFailure(updated, reason, error?.providerErrorCode ?? null, attempts);
    if (error instanceof RateLimited && error.retryAfterMs !== null)
      result.retryAt = now + error.retryAfterMs;
    this.coolDowns.start(account.id, result, now);
    return { account: updated, result };
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
}
