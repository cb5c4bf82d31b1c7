import { randomOpaqueToken, sha256Hex } from '../crypto/opaqueToken.js';
import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import { OAuthProviderError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import { generateCodeVerifier } from '../platforms/pkce.js';
import type { Provider } from '../platforms/provider.js';
import type { ConnectSessionRecord, ConnectSessionRepository } from '../store/connectSessionRepository.js';
import type { AccountLifecycle } from './accountLifecycle.js';
import type { RequiredScopes } from './requiredScopes.js';
import { ServiceError } from './serviceError.js';

export interface ConnectFlowDeps {
  sessions: ConnectSessionRepository;
  cipher: TokenCipher;
  providers: Partial<Record<ProviderName, Provider>>;
  lifecycle: AccountLifecycle;
  /** What each platform's grant must include; a connect that lacks a scope is refused. */
  requiredScopes: RequiredScopes;
  clock: Clock;
  logger: Logger;
  publicBaseUrl: string;
  allowedReturnOrigins: readonly string[];
  ttlSeconds: number;
}

/** Why a state cannot be used. Each gets its own page: "expired" tells the user to start again. */
export type StateProblem = 'unknown' | 'reused' | 'expired' | 'wrong_provider';

/** Error codes a connect flow reports back to `return_to` (as `error=`). Stable: part of the API. */
export type ConnectErrorCode =
  | 'access_denied'
  | 'authorization_failed'
  | 'account_owned_by_another_owner'
  /** The user left a required scope unticked: `missing` names them (comma-separated). */
  | 'missing_scopes'
  | 'provider_error'
  | 'provider_not_configured';

export type CallbackOutcome =
  | { kind: 'invalid_state'; problem: StateProblem }
  | {
      kind: 'finished';
      /** Where to send the browser: `return_to` with the outcome in its query. */
      location: string;
      provider: ProviderName;
      ownerId: string;
      result:
        | { status: 'connected' | 'reconnected'; account: SocialAccount }
        | { status: 'error'; error: ConnectErrorCode; missingScopes?: string[] };
    };

/** The platform's redirect back to us, as received. */
export interface CallbackParams {
  provider: ProviderName;
  state: string | undefined;
  code: string | undefined;
  error: string | undefined;
}

/** Where the verifier's ciphertext is bound (the cipher's associated data): this session, nothing else. */
const verifierBinding = (sessionId: string) => ({
  accountId: `connect-session:${sessionId}`,
  field: 'access_token' as const,
});

/**
 * The authorization-code flow, from "connect this owner's TikTok" to a stored account.
 *
 * The state is 32 random bytes, handed out once inside the connect URL and never stored: the row is
 * found by its SHA-256, so neither a copy of the database nor the logs can complete a flow. It is
 * single-use (spent by the first callback that shows it, whatever that callback brings) and lives
 * `ttlSeconds`. The PKCE verifier stays on the server, encrypted with the token keyring.
 */
export class ConnectFlow {
  constructor(private readonly deps: ConnectFlowDeps) {}

  /** The scopes a connect asks for: the platform's list (issue 3), in one place per provider. */
  private requireProvider(name: ProviderName): Provider {
    const provider = this.deps.providers[name];
    if (!provider) {
      throw new ServiceError('provider_not_configured', `${name} is not configured on this service`);
    }
    return provider;
  }

  /** Throws return_to_not_allowed unless `returnTo` is an absolute http(s) URL on an allowed origin. */
  checkReturnTo(returnTo: string): string {
    let url: URL;
    try {
      url = new URL(returnTo);
    } catch {
      throw new ServiceError('return_to_not_allowed', 'return_to must be an absolute URL');
    }
    if (
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      !this.deps.allowedReturnOrigins.includes(url.origin)
    ) {
      throw new ServiceError(
        'return_to_not_allowed',
        `return_to must be on an allowed origin (ALLOWED_RETURN_ORIGINS); ${url.origin} is not`,
      );
    }
    return url.toString();
  }

  async start(input: { provider: ProviderName; ownerId: string; returnTo: string | null }): Promise<{
    url: string;
    expiresAt: number;
  }> {
    const provider = this.requireProvider(input.provider);
    const returnTo = this.checkReturnTo(input.returnTo ?? `${this.deps.publicBaseUrl}/connect/done`);
    const state = randomOpaqueToken();
    const id = sha256Hex(state);
    const now = this.deps.clock.now();
    const expiresAt = now + this.deps.ttlSeconds * 1000;
    const verifier = provider.capabilities.supportsPkce ? generateCodeVerifier() : null;
    // Fails here, not at the user's click, when the platform's redirect URI is missing.
    this.authorizationUrl(provider, state, verifier);
    await this.deps.sessions.insert({
      id,
      provider: input.provider,
      ownerId: input.ownerId,
      returnTo,
      sealedCodeVerifier: verifier === null ? null : this.deps.cipher.encrypt(verifier, verifierBinding(id)),
      createdAt: now,
      expiresAt,
    });
    // Housekeeping: expired sessions are kept a day to say "expired" rather than "unknown".
    void this.deps.sessions.deleteExpiredBefore(now - 86_400_000).catch((error: unknown) => {
      this.deps.logger.warn({ err: describeError(error) }, 'expired connect sessions could not be deleted');
    });
    return { url: `${this.deps.publicBaseUrl}/connect/${state}`, expiresAt };
  }

  /**
   * The platform's consent page for a connect URL the browser opened. Opening it does not spend the
   * state (a reload must work); only the callback does.
   */
  async consentUrl(state: string): Promise<URL | { problem: StateProblem }> {
    const session = await this.deps.sessions.findById(sha256Hex(state));
    if (!session) return { problem: 'unknown' };
    if (session.usedAt !== null) return { problem: 'reused' };
    if (this.deps.clock.now() >= session.expiresAt) return { problem: 'expired' };
    const provider = this.requireProvider(session.provider);
    return this.authorizationUrl(provider, state, this.openVerifier(session));
  }

  async complete(params: CallbackParams): Promise<CallbackOutcome> {
    if (!params.state) return { kind: 'invalid_state', problem: 'unknown' };
    const id = sha256Hex(params.state);
    const consumed = await this.deps.sessions.consume(id, this.deps.clock.now());
    if (consumed.kind !== 'ok') return { kind: 'invalid_state', problem: consumed.kind };
    const session = consumed.session;
    // A state issued for TikTok arriving at the YouTube callback is someone replaying it elsewhere.
    if (session.provider !== params.provider) return { kind: 'invalid_state', problem: 'wrong_provider' };

    const fail = (error: ConnectErrorCode, missingScopes?: string[]): CallbackOutcome => ({
      kind: 'finished',
      location: withOutcome(session.returnTo, {
        status: 'error',
        provider: session.provider,
        error,
        ...(missingScopes ? { missing: missingScopes.join(',') } : {}),
      }),
      provider: session.provider,
      ownerId: session.ownerId,
      result: missingScopes ? { status: 'error', error, missingScopes } : { status: 'error', error },
    });

    // The user clicked Cancel (error=access_denied, or Instagram's error_reason=user_denied).
    if (params.error !== undefined || !params.code) {
      return fail(
        params.error === 'access_denied' || params.error === undefined
          ? 'access_denied'
          : 'authorization_failed',
      );
    }
    const provider = this.deps.providers[session.provider];
    if (!provider) return fail('provider_not_configured');

    try {
      const tokens = await provider.exchangeAuthorizationCode(params.code, this.openVerifier(session));
      // Before the profile: without youtube.readonly the channel cannot even be read, and the user
      // should hear "a permission is missing", not "the authorization failed".
      const missing = this.deps.requiredScopes.missingFromGrant(session.provider, tokens);
      if (missing.length > 0) {
        const revocation = await this.deps.lifecycle.revokeFreshGrant(session.provider, tokens);
        await this.deps.lifecycle.recordRefusedConnect({
          provider: session.provider,
          ownerId: session.ownerId,
          connectSessionId: session.id,
          externalAccountId: tokens.externalAccountId,
          reason: 'missing_scopes',
          detail: {
            missingScopes: missing,
            grantedScopes: tokens.scopes,
            platformRevoked: revocation.revoked,
          },
          providerErrorCode: revocation.error?.providerErrorCode ?? null,
        });
        this.deps.logger.warn(
          { provider: session.provider, ownerId: session.ownerId, missingScopes: missing },
          'connect refused: the user did not grant every required scope',
        );
        return fail('missing_scopes', missing);
      }
      const profile = await provider.fetchProfile(tokens.accessToken);
      const outcome = await this.deps.lifecycle.connect({
        ownerId: session.ownerId,
        provider: session.provider,
        tokens,
        profile,
        connectedWithPkce: session.sealedCodeVerifier !== null,
      });
      if (outcome.kind === 'owned_by_another_owner') {
        this.deps.logger.warn(
          { provider: session.provider, ownerId: session.ownerId },
          'connect refused: the platform account belongs to another owner',
        );
        // The grant we were just given is not ours to keep; best effort, where the platform can.
        const revocation = await this.deps.lifecycle.revokeFreshGrant(session.provider, tokens);
        if (revocation.revoked === false) {
          // The fresh grant stays alive at the platform (we store none of it): say so.
          this.deps.logger.warn(
            { provider: session.provider, err: describeError(revocation.error) },
            "the refused connect's grant could not be revoked at the platform",
          );
        }
        return fail('account_owned_by_another_owner');
      }
      return {
        kind: 'finished',
        location: withOutcome(session.returnTo, {
          status: outcome.kind,
          provider: session.provider,
          account_id: outcome.account.id,
        }),
        provider: session.provider,
        ownerId: session.ownerId,
        result: { status: outcome.kind, account: outcome.account },
      };
    } catch (error) {
      if (!(error instanceof OAuthProviderError)) throw error;
      this.deps.logger.warn(
        { provider: session.provider, err: error.toJSON() },
        'connect failed at the platform',
      );
      return fail(error.code === 'reauthorization_required' ? 'authorization_failed' : 'provider_error');
    }
  }

  private authorizationUrl(provider: Provider, state: string, verifier: string | null): URL {
    try {
      return provider.createAuthorizationUrl({
        state,
        codeVerifier: verifier,
        scopes: this.deps.requiredScopes.toRequest(provider.name, provider.defaultScopes),
      });
    } catch (error) {
      if (error instanceof OAuthProviderError && error.code === 'provider_config_error') {
        throw new ServiceError('provider_not_configured', error.message);
      }
      throw error;
    }
  }

  private openVerifier(session: ConnectSessionRecord): string | null {
    return session.sealedCodeVerifier === null
      ? null
      : this.deps.cipher.decrypt(session.sealedCodeVerifier, verifierBinding(session.id));
  }
}

function withOutcome(returnTo: string, params: Record<string, string>): string {
  const url = new URL(returnTo);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.toString();
}

/** Name and message only: an OAuthProviderError's own fields carry no token either. */
function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
