import { hasUsableAccessToken, type SocialAccount } from '../domain/account.js';
import type { Clock } from '../domain/clock.js';
import type { OAuthRefreshResult } from '../domain/token.js';
import type { EnsureOptions, TokenService } from './tokenService.js';

export interface UsableTokenAnswer {
  account: SocialAccount;
  result: OAuthRefreshResult | null;
  /**
   * The access token when it can be used now (the account active, the token not expired), else
   * null: the account's status and `result` say why. A failed refresh that left the old token
   * valid still answers it (`result` then says what failed).
   */
  accessToken: string | null;
  /** A refresh reached the platform for this call and succeeded. */
  refreshed: boolean;
}

/**
 * "A token I can use now" (the API's /token, the CLI's `token`): ensured through the exactly-once
 * path, then judged usable or not by this process's clock.
 */
export async function usableAccessToken(
  oauth: { tokens: TokenService; clock: Clock },
  accountId: string,
  options?: EnsureOptions,
): Promise<UsableTokenAnswer> {
  const { account, result } = await oauth.tokens.ensureValidAccessToken(accountId, options);
  return {
    account,
    result,
    accessToken: hasUsableAccessToken(account, oauth.clock.now()) ? account.accessToken : null,
    refreshed: result?.success === true && result.attempts > 0,
  };
}
