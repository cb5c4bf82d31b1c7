import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import { AccountNotFound, OAuthProviderError } from '../domain/errors.js';
import type { NewOAuthEvent } from '../domain/ledger.js';
import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import type { Provider, ProviderProfile, ProviderTokens } from '../platforms/provider.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { OAuthEventListener } from './tokenService.js';

export interface AccountLifecycleDeps {
  accounts: AccountRepository;
  ledger: LedgerRepository;
  providers: Partial<Record<ProviderName, Provider>>;
  clock: Clock;
  logger: Logger;
  /**
   * A live access token for the account, refreshing first (under the refresh lease, saved) when
   * the stored one is expired or close; null when there is none to be had. The token service's
   * ensureValidAccessToken in the app; without it, only an unexpired stored token is used.
   */
  liveAccessToken?: (account: SocialAccount) => Promise<string | null>;
}

/** What a revocation at the platform came to: confirmed, refused (error), or impossible (null). */
export interface PlatformRevocation {
  revoked: boolean | null;
  error: OAuthProviderError | null;
}

export type ConnectOutcome =
  | { kind: 'connected' | 'reconnected'; account: SocialAccount; previousStatus: string | null }
  /** The platform account is already connected for another owner: nothing was stored. */
  | { kind: 'owned_by_another_owner' };

export interface RevokeOutcome {
  account: SocialAccount;
  /** true: the platform revoked the grant; false: it could not (error); null: it has no endpoint. */
  platformRevoked: boolean | null;
}

/** Why an account was revoked, as written in the ledger's `reason`. */
export type RevokeReason =
  | 'revoked_by_api'
  | 'revoked_in_portal'
  | 'platform_deauthorized'
  | 'data_deletion_request';

/**
 * The account changes that are not token refreshes: connecting, revoking, deleting. Like the token
 * service, each writes its ledger event after the change is committed and then tells listeners
 * (outgoing notifications, metrics).
 */
export class AccountLifecycle {
  private readonly listeners: OAuthEventListener[] = [];

  constructor(private readonly deps: AccountLifecycleDeps) {}

  onEvent(listener: OAuthEventListener): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /**
   * Stores a fresh grant. An account is one platform account (provider + external id): seen before
   * for the same owner, it gets the new grant and becomes active again (a reconnect); seen for
   * another owner, it is refused, so that nobody can take over someone else's connected account.
   */
  async connect(input: {
    ownerId: string;
    provider: ProviderName;
    tokens: ProviderTokens;
    profile: ProviderProfile;
    connectedWithPkce: boolean;
  }): Promise<ConnectOutcome> {
    const now = this.deps.clock.now();
    const grant = {
      ownerId: input.ownerId,
      displayName: input.profile.displayName,
      accessToken: input.tokens.accessToken,
      refreshToken: input.tokens.refreshToken,
      expiresAt: input.tokens.expiresInSeconds === null ? null : now + input.tokens.expiresInSeconds * 1000,
      refreshTokenExpiresAt:
        input.tokens.refreshTokenExpiresInSeconds === null
          ? null
          : now + input.tokens.refreshTokenExpiresInSeconds * 1000,
      scopes: input.tokens.scopes ?? [],
      tokenIssuedAt: now,
      // Instagram's code exchange names the user by another id than /me: kept, because Meta's
      // deauthorize and data-deletion callbacks may carry either.
      alternateExternalId:
        input.tokens.externalAccountId !== null &&
        input.tokens.externalAccountId !== input.profile.externalAccountId
          ? input.tokens.externalAccountId
          : null,
    };
    const store = async (): Promise<ConnectOutcome> => {
      const existing = await this.deps.accounts.findByExternalId(
        input.provider,
        input.profile.externalAccountId,
      );
      if (existing && existing.ownerId !== input.ownerId) return { kind: 'owned_by_another_owner' };
      if (existing) {
        const account = await this.deps.accounts.replaceGrant(existing.id, grant, now);
        return { kind: 'reconnected', account, previousStatus: existing.status };
      }
      const account = await this.deps.accounts.insert(
        { ...grant, provider: input.provider, externalAccountId: input.profile.externalAccountId },
        now,
      );
      return { kind: 'connected', account, previousStatus: null };
    };
    let outcome: ConnectOutcome;
    try {
      outcome = await store();
    } catch (error) {
      // Two callbacks for the same new platform account raced, and the other one inserted first
      // (unique provider + external id): this one is now a reconnect, or a refusal.
      if (!(await this.deps.accounts.findByExternalId(input.provider, input.profile.externalAccountId)))
        throw error;
      outcome = await store();
    }
    if (outcome.kind === 'owned_by_another_owner') return outcome;
    const notes = input.tokens.lifetimeNotes ?? [];
    await this.announce(outcome.account, {
      accountId: outcome.account.id,
      type: outcome.kind,
      reason: null,
      detail: {
        previousStatus: outcome.previousStatus,
        hasRefreshToken: outcome.account.refreshToken !== null,
        pkce: input.connectedWithPkce,
        scopes: outcome.account.scopes,
        // Lifetimes the code exchange gave that were replaced (missing, unreadable, past the
        // documented maximum): noted as on a refresh (tokenService's `refreshed` event).
        ...(notes.length > 0 ? { lifetimeNotes: notes } : {}),
      },
    });
    return outcome;
  }

  /**
   * Revokes at the platform where it has an endpoint, then marks the account revoked and deletes its
   * tokens whatever the platform said: the owner asked us to stop holding them.
   */
  async revoke(accountId: string, reason: RevokeReason): Promise<RevokeOutcome> {
    const found = await this.deps.accounts.findById(accountId);
    if (!found) throw new AccountNotFound(accountId);
    const attempt = await this.revokeAtPlatform(found);
    // Re-read: a refresh on the way (TikTok) bumped the row.
    const account = (await this.deps.accounts.findById(accountId)) ?? found;
    const now = this.deps.clock.now();
    const event: NewOAuthEvent = {
      accountId: account.id,
      type: 'revoked',
      reason,
      providerErrorCode: attempt.error?.providerErrorCode ?? null,
      detail: { platformRevoked: attempt.revoked, previousStatus: account.status },
    };
    // The status, its ledger event and the outgoing notification in one commit: a process that
    // stops here loses none of them. Revoking a revoked account again writes no second event.
    await this.deps.accounts.setStatus(
      account.id,
      'revoked',
      null,
      now,
      undefined,
      account.status === 'revoked' ? undefined : event,
    );
    const updated = (await this.deps.accounts.findById(account.id))!;
    if (account.status !== 'revoked') this.tell(event, updated);
    return { account: updated, platformRevoked: attempt.revoked };
  }

  /**
   * Webhooks' account lookups: the account a platform callback names by its external id, or (Meta,
   * whose callbacks may carry either of the ids stored at connect) by either of them.
   */
  findByPlatformId(provider: ProviderName, externalAccountId: string): Promise<SocialAccount | null> {
    return this.deps.accounts.findByExternalId(provider, externalAccountId);
  }

  findByAnyPlatformId(provider: ProviderName, id: string) {
    return this.deps.accounts.findByAnyExternalId(provider, id);
  }

  /**
   * A removal signed before the account's current grant began is about an older grant: replayed or
   * late, it must not revoke a reconnect that came after it. `eventTimeMs` null: the platform did
   * not date it, so it cannot be judged older.
   */
  async predatesGrant(account: SocialAccount, eventTimeMs: number | null): Promise<boolean> {
    if (eventTimeMs === null) return false;
    let grantStart = account.createdAt;
    // The newest reconnect: the ledger lists oldest first, so a page of 500 ended at the 500th
    // reconnect and, after more, let an event older than the current grant revoke it (issue 10).
    const last = await this.deps.ledger.latestOfType(account.id, 'reconnected');
    if (last) grantStart = Math.max(grantStart, last.createdAt);
    return eventTimeMs < grantStart;
  }

  /**
   * The platform told us (deauthorize, data deletion, authorization.removed) that the user removed
   * our app. Idempotent, because platforms retry and may deliver twice: an account already revoked
   * gets no second event. Returns null when we hold no such account.
   */
  async revokedByPlatform(
    provider: ProviderName,
    externalAccountId: string,
    reason: RevokeReason,
    detail: Record<string, unknown>,
  ): Promise<SocialAccount | null> {
    // Conditioned on the version read, so that two deliveries racing write one event; a refresh
    // that moved the version meanwhile only makes us read again.
    for (let round = 1; ; round++) {
      const account = await this.deps.accounts.findByExternalId(provider, externalAccountId);
      if (!account) return null;
      if (account.status === 'revoked') return account;
      const event: NewOAuthEvent = {
        accountId: account.id,
        type: 'revoked',
        reason,
        detail: { ...detail, previousStatus: account.status },
      };
      const changed = await this.deps.accounts.setStatus(
        account.id,
        'revoked',
        null,
        this.deps.clock.now(),
        round < 10 ? account.version : undefined,
        event,
      );
      if (!changed) continue;
      const updated = (await this.deps.accounts.findById(account.id))!;
      this.tell(event, updated);
      return updated;
    }
  }

  /** Revokes at the platform (best effort), then deletes the row; the ledger keeps its history. */
  async delete(accountId: string): Promise<void> {
    const account = await this.deps.accounts.findById(accountId);
    if (!account) throw new AccountNotFound(accountId);
    const attempt: PlatformRevocation =
      account.status === 'revoked' ? { revoked: null, error: null } : await this.revokeAtPlatform(account);
    await this.deps.accounts.delete(account.id);
    await this.announce(account, {
      accountId: account.id,
      type: 'deleted',
      reason: null,
      detail: { platformRevoked: attempt.revoked, previousStatus: account.status },
    });
  }

  /**
   * A connect refused after the platform answered (a required scope not granted): nothing is
   * stored, but the ledger keeps the event. It is filed under the account when the platform named
   * one we already hold for this owner (a reconnect), else under the connect session.
   */
  async recordRefusedConnect(input: {
    provider: ProviderName;
    ownerId: string;
    connectSessionId: string;
    externalAccountId: string | null;
    reason: 'missing_scopes';
    detail: Record<string, unknown>;
    providerErrorCode: string | null;
  }): Promise<void> {
    const existing =
      input.externalAccountId === null
        ? null
        : await this.deps.accounts.findByExternalId(input.provider, input.externalAccountId);
    const accountId =
      existing && existing.ownerId === input.ownerId
        ? existing.id
        : `connect-session:${input.connectSessionId}`;
    await this.deps.ledger.append(
      {
        accountId,
        type: 'connect_refused',
        reason: input.reason,
        providerErrorCode: input.providerErrorCode,
        detail: { provider: input.provider, ownerId: input.ownerId, ...input.detail },
      },
      this.deps.clock.now(),
    );
  }

  /**
   * Revokes the grant a platform just gave us and we will not keep (partial consent, an account
   * owned by someone else): its access token is fresh, so no refresh is needed first.
   */
  async revokeFreshGrant(providerName: ProviderName, tokens: ProviderTokens): Promise<PlatformRevocation> {
    const provider = this.deps.providers[providerName];
    if (!provider?.capabilities.hasRevocationEndpoint) return { revoked: null, error: null };
    const token =
      provider.capabilities.revokeWith === 'refresh_token' && tokens.refreshToken !== null
        ? tokens.refreshToken
        : tokens.accessToken;
    return this.askPlatformToRevoke(provider, token, { provider: providerName });
  }

  /**
   * `revoked` is true only when the platform confirmed it. Google ends the whole grant when its
   * refresh token is revoked (an expired access token is refused, and the refresh token lives on);
   * TikTok's endpoint takes an access token, so an expired one is refreshed first.
   */
  private async revokeAtPlatform(account: SocialAccount): Promise<PlatformRevocation> {
    const provider = this.deps.providers[account.provider];
    if (!provider?.capabilities.hasRevocationEndpoint) return { revoked: null, error: null };
    let token: string | null;
    if (provider.capabilities.revokeWith === 'refresh_token' && account.refreshToken !== null) {
      token = account.refreshToken;
    } else {
      try {
        token = await this.accessTokenToRevoke(account);
      } catch (error) {
        if (!(error instanceof OAuthProviderError)) throw error;
        return this.refused(account, error);
      }
    }
    if (token === null) {
      // Nothing the platform would accept: the grant is dead already, or we hold none of it.
      this.deps.logger.warn(
        { accountId: account.id, provider: account.provider },
        'no live token to revoke at the platform; tokens are deleted anyway',
      );
      return { revoked: false, error: null };
    }
    return this.askPlatformToRevoke(provider, token, { accountId: account.id, provider: account.provider });
  }

  private async accessTokenToRevoke(account: SocialAccount): Promise<string | null> {
    const now = this.deps.clock.now();
    // A minute of margin: a token that expires on the way is refused like an expired one.
    const stillValid =
      account.accessToken !== null && (account.expiresAt === null || account.expiresAt > now + 60_000);
    if (stillValid) return account.accessToken;
    if (this.deps.liveAccessToken) return this.deps.liveAccessToken(account);
    return null;
  }

  private async askPlatformToRevoke(
    provider: Provider,
    token: string,
    logContext: Record<string, unknown>,
  ): Promise<PlatformRevocation> {
    try {
      await provider.revokeToken(token);
      return { revoked: true, error: null };
    } catch (error) {
      if (!(error instanceof OAuthProviderError)) throw error;
      this.deps.logger.warn(
        { ...logContext, err: error.toJSON() },
        'the platform did not confirm the revocation; tokens are deleted anyway',
      );
      return { revoked: false, error };
    }
  }

  private refused(account: SocialAccount, error: OAuthProviderError): PlatformRevocation {
    this.deps.logger.warn(
      { accountId: account.id, provider: account.provider, err: error.toJSON() },
      'could not get a live token to revoke; tokens are deleted anyway',
    );
    return { revoked: false, error };
  }

  private async announce(account: SocialAccount, event: NewOAuthEvent): Promise<void> {
    await this.deps.ledger.append(event, this.deps.clock.now());
    this.tell(event, account);
  }

  /** Tells the listeners of an event that is already committed. */
  private tell(event: NewOAuthEvent, account: SocialAccount): void {
    for (const listener of this.listeners) {
      try {
        listener(event, account);
      } catch (error) {
        this.deps.logger.error(
          { accountId: account.id, err: error instanceof Error ? error.message : String(error) },
          'event listener failed',
        );
      }
    }
  }
}
