import type { SocialAccount } from '../domain/account.js';
import type { ProviderName } from '../domain/providerName.js';
import type { ProviderTokens } from '../platforms/provider.js';

/**
 * The scopes an account must hold on each platform to publish and read its profile, configured per
 * platform (`<PROVIDER>_REQUIRED_SCOPES`, see src/config.ts). Users can grant fewer scopes than
 * asked (Google's per-scope checkboxes, TikTok's subset, Instagram's `permissions`): a connect
 * whose grant lacks one is refused, and a stored account that lacks one is reported, instead of
 * failing later when it tries to post.
 *
 * Platform-neutral: a platform plugs in by reporting what it granted in its token response
 * (`ProviderTokens.scopes`); nothing else is needed.
 */
export class RequiredScopes {
  constructor(private readonly required: Readonly<Record<ProviderName, readonly string[]>>) {}

  of(provider: ProviderName): readonly string[] {
    return this.required[provider] ?? [];
  }

  /** What a connect asks for: the client's own scopes plus any required one they do not include. */
  toRequest(provider: ProviderName, clientScopes: readonly string[]): string[] {
    return [...new Set([...clientScopes, ...this.of(provider)])];
  }

  /**
   * Required scopes a stored account lacks, in the configured order. An account with no scopes
   * recorded is one whose platform did not say what it granted (or an import without them): it is
   * not reported, since nothing is known to be missing.
   */
  missingScopes(account: Pick<SocialAccount, 'provider' | 'scopes'>): string[] {
    if (account.scopes.length === 0) return [];
    return missingFrom(account.scopes, this.of(account.provider));
  }

  /** Required scopes a fresh grant lacks; none when the token response did not say (scopes null). */
  missingFromGrant(provider: ProviderName, tokens: Pick<ProviderTokens, 'scopes'>): string[] {
    if (tokens.scopes === null) return [];
    return missingFrom(tokens.scopes, this.of(provider));
  }
}

/** The required scopes not among the granted ones (exact, case-sensitive, as OAuth scopes are). */
export function missingFrom(granted: readonly string[], required: readonly string[]): string[] {
  const have = new Set(granted);
  return required.filter((scope) => !have.has(scope));
}
