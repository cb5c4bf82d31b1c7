import type { SocialAccount } from '../domain/account.js';
import { AccountNotFound } from '../domain/errors.js';
import { warmUpPlan } from '../domain/refreshPolicy.js';
import { needsAccessTokenRefresh, type OAuthRefreshResult } from '../domain/token.js';
import type { SocialOAuth } from './socialOAuth.js';

export interface WarmUpResult {
  /**
   * ready: the stored token will be valid at `at` (refreshed now if it had to be);
   * too_early: a token refreshed now would expire before `at` (TikTok's 2-hour tokens): ask again
   * after `askAfter`; failed: the refresh failed (see `result`), or the account is not active.
   */
  status: 'ready' | 'too_early' | 'failed';
  refreshed: boolean;
  /** For too_early: the earliest time a warm-up can produce a token valid at `at` (epoch ms). */
  askAfter: number | null;
  account: SocialAccount;
  result: OAuthRefreshResult | null;
}

/**
 * Warm-up for a scheduled post: makes sure the account's access token will still be valid at `at`
 * (epoch ms), so that a post scheduled for 09:00 does not wait for a refresh at 09:00. Call it a
 * while before the post (up to one access-token lifetime before it); calling it too early refreshes
 * nothing and says when to come back.
 */
export async function warmAccessToken(
  oauth: SocialOAuth,
  accountId: string,
  at: number,
): Promise<WarmUpResult> {
  const account = await oauth.accounts.findById(accountId);
  if (!account) throw new AccountNotFound(accountId);
  const thresholdSeconds = oauth.config.refresh.thresholdSeconds;
  const now = oauth.clock.now();
  if (account.status !== 'active') {
    const { result } = await oauth.tokens.ensureValidAccessToken(accountId);
    return { status: 'failed', refreshed: false, askAfter: null, account, result };
  }
  const plan = warmUpPlan(account, { now, at, thresholdSeconds });
  if (plan.kind === 'ready')
    return { status: 'ready', refreshed: false, askAfter: null, account, result: null };
  if (plan.kind === 'too_early') {
    return { status: 'too_early', refreshed: false, askAfter: plan.askAfter, account, result: null };
  }
  const { account: after, result } = await oauth.tokens.ensureValidAccessToken(accountId, {
    thresholdSeconds,
    validAt: at,
  });
  const valid =
    after.status === 'active' &&
    !needsAccessTokenRefresh(after, { thresholdSeconds: 0, now: oauth.clock.now(), validAt: at });
  return {
    status: valid ? 'ready' : 'failed',
    refreshed: result?.success === true && result.attempts > 0,
    askAfter: null,
    account: after,
    result,
  };
}
