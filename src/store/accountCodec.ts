import type { TokenCipher, TokenField } from '../crypto/tokenCipher.js';
import type { AccountStatus, SocialAccount } from '../domain/account.js';
import type { ProviderName } from '../domain/providerName.js';
import type { AccountRow as Row } from './accountTypes.js';
import type { OpenedTokens } from './openedTokens.js';

/**
 * Between a `social_accounts` row and a `SocialAccount`: tokens are sealed (AES-GCM, bound to the
 * account and column) on the way in and opened on the way out, through the cache of tokens this
 * process has recently opened.
 */
export class AccountCodec {
  constructor(
    private readonly cipher: TokenCipher,
    private readonly opened: OpenedTokens,
  ) {}

  seal(token: string | null, accountId: string, field: TokenField): string | null {
    return token === null || token === '' ? null : this.cipher.encrypt(token, { accountId, field });
  }

  toAccount(
    row: Row,
    options: { decrypt: boolean; known?: Partial<Record<TokenField, string>> } = { decrypt: true },
  ): SocialAccount {
    const open = (value: string | null, field: TokenField): string | null => {
      if (value === null) return null;
      // Listings never decrypt: a non-null marker is enough to say "has a token".
      if (!options.decrypt) return '[encrypted]';
      const known = options.known?.[field];
      if (known !== undefined) {
        this.opened.remember(row.id, field, value, known);
        return known;
      }
      return this.opened.open(row.id, field, value, () =>
        this.cipher.decrypt(value, { accountId: row.id, field }),
      );
    };
    return {
      id: row.id,
      ownerId: row.owner_id,
      provider: row.provider as ProviderName,
      externalAccountId: row.external_account_id,
      displayName: row.display_name,
      accessToken: open(row.oauth_access_token, 'access_token'),
      refreshToken: open(row.oauth_refresh_token, 'refresh_token'),
      expiresAt: row.oauth_expires_at,
      refreshTokenExpiresAt: row.oauth_refresh_expires_at,
      scopes: JSON.parse(row.oauth_scopes) as string[],
      status: row.status as AccountStatus,
      tokenIssuedAt: row.token_issued_at,
      version: row.version,
      lastRefreshAt: row.last_refresh_at,
      lastError: row.last_error,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}
