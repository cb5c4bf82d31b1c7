import {
  type OAuthProviderError,
  ProviderConfigError,
  ProviderResponseInvalid,
  ReauthorizationRequired,
  TransientProviderError,
} from '../../../../src/domain/errors.js';
import { createS256CodeChallenge } from '../../../../src/platforms/pkce.js';
import type {
  AuthorizationUrlInput,
  Provider,
  ProviderCapabilities,
  ProviderHttpOptions,
  ProviderProfile,
  ProviderSettings,
  ProviderTokens,
  RefreshedTokens,
  RefreshInput,
} from '../../../../src/platforms/provider.js';
import { resolveEndpoint, sendProviderRequest } from '../../../../src/platforms/providerHttp.js';
import { readTokenAnswer } from '../../../../src/platforms/tokenAnswer.js';

/**
 * A throwaway fourth platform for test/fourthPlatform.test.ts: a plain RFC 6749 server in the
 * style of a Mastodon instance (/oauth/authorize, /oauth/token, /oauth/revoke, verify_credentials),
 * with expiring access tokens and rotating refresh tokens so that refresh has work to do. It is
 * not a model of any real platform: it exists to show a platform fits in one folder.
 */
export const MASTODONISH_HOST = 'https://mastodonish.example';

export const MASTODONISH_CAPABILITIES: ProviderCapabilities = {
  rotatesRefreshToken: true,
  refreshesAccessTokenItself: false,
  minimumTokenAgeForRefreshSeconds: 0,
  refreshTokenIdleLifetimeSeconds: null,
  supportsPkce: true,
  hasRevocationEndpoint: true,
  revokeWith: 'access_token',
  scopeSeparator: ' ',
  accessTokenLifetime: { maxSeconds: 7200, fallbackSeconds: 3600 },
  refreshTokenLifetime: { maxSeconds: 365 * 86_400, fallbackSeconds: 30 * 86_400 },
};

function classify(status: number, body: unknown): OAuthProviderError {
  const code =
    typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string'
      ? (body as { error: string }).error
      : null;
  const details = { provider: 'mastodonish', providerErrorCode: code, httpStatus: status };
  if (code === 'invalid_grant' || code === 'invalid_token' || status === 401)
    return new ReauthorizationRequired(`mastodonish rejected the grant (${code ?? status})`, details);
  if (code === 'invalid_client') return new ProviderConfigError('mastodonish rejected our client', details);
  if (status >= 500) return new TransientProviderError(`mastodonish answered ${status}`, details);
  return new ProviderResponseInvalid(`mastodonish answered ${status}`, details);
}

export class MastodonishProvider implements Provider {
  readonly name = 'mastodonish';
  readonly capabilities = MASTODONISH_CAPABILITIES;
  readonly defaultScopes = ['read', 'write'] as const;

  constructor(
    private readonly settings: ProviderSettings,
    private readonly http: ProviderHttpOptions,
  ) {}

  createAuthorizationUrl(input: AuthorizationUrlInput): URL {
    const url = resolveEndpoint(this.settings.baseUrl, `${MASTODONISH_HOST}/oauth/authorize`);
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('redirect_uri', this.redirectUri());
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', input.scopes.join(' '));
    url.searchParams.set('state', input.state);
    if (input.codeVerifier !== null) {
      url.searchParams.set('code_challenge', createS256CodeChallenge(input.codeVerifier));
      url.searchParams.set('code_challenge_method', 'S256');
    }
    return url;
  }

  async exchangeAuthorizationCode(code: string, codeVerifier: string | null): Promise<ProviderTokens> {
    const tokens = await this.token({
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.redirectUri(),
      ...(codeVerifier === null ? {} : { code_verifier: codeVerifier }),
    });
    if (tokens.accessToken === null) {
      throw new ProviderResponseInvalid('mastodonish code exchange gave no access token', {
        provider: this.name,
      });
    }
    return { ...tokens, accessToken: tokens.accessToken };
  }

  async refreshAccessToken(input: RefreshInput): Promise<RefreshedTokens> {
    if (input.refreshToken === null) {
      throw new ReauthorizationRequired('No mastodonish refresh token is stored', { provider: this.name });
    }
    return this.token({ grant_type: 'refresh_token', refresh_token: input.refreshToken });
  }

  async revokeToken(token: string): Promise<void> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, `${MASTODONISH_HOST}/oauth/revoke`),
      form: { token, client_id: this.settings.clientId, client_secret: this.settings.clientSecret },
      label: 'mastodonish revoke endpoint',
    });
    if (answer.status >= 200 && answer.status < 300) return;
    throw classify(answer.status, answer.json);
  }

  async fetchProfile(accessToken: string): Promise<ProviderProfile> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'GET',
      url: resolveEndpoint(this.settings.baseUrl, `${MASTODONISH_HOST}/api/v1/accounts/verify_credentials`),
      bearerToken: accessToken,
      label: 'mastodonish verify_credentials',
    });
    if (answer.status !== 200) throw classify(answer.status, answer.json);
    const body = answer.json as { id?: unknown; username?: unknown };
    if (typeof body.id !== 'string') {
      throw new ProviderResponseInvalid('mastodonish profile without an id', { provider: this.name });
    }
    return {
      externalAccountId: body.id,
      displayName: typeof body.username === 'string' ? body.username : null,
    };
  }

  private async token(form: Record<string, string>): Promise<RefreshedTokens> {
    const answer = await sendProviderRequest(this.name, this.http, {
      method: 'POST',
      url: resolveEndpoint(this.settings.baseUrl, `${MASTODONISH_HOST}/oauth/token`),
      form: { ...form, client_id: this.settings.clientId, client_secret: this.settings.clientSecret },
      label: 'mastodonish token endpoint',
    });
    if (answer.status !== 200) throw classify(answer.status, answer.json);
    return readTokenAnswer(
      this.name,
      this.capabilities,
      answer,
      {
        refreshTokenLifetime: 'refresh_token_expires_in',
        refreshTokenLifetimeOptional: true,
        externalAccountId: null,
      },
      'mastodonish token endpoint',
    );
  }

  private redirectUri(): string {
    if (this.settings.redirectUri === null) {
      throw new ProviderConfigError('mastodonish redirect URI is not configured', { provider: this.name });
    }
    return this.settings.redirectUri;
  }
}
