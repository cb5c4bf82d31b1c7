import type { Logger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import type { AccountLifecycle } from './accountLifecycle.js';

export type RemovalReason = 'platform_deauthorized' | 'data_deletion_request';

/** What a platform's removal notice did. */
export type RemovalOutcome = 'revoked' | 'no_such_account' | 'predates_grant';

/**
 * A platform telling us its user removed our app (deauthorize, data deletion,
 * authorization.removed), after the route has verified the platform's signature: the account is
 * found by the platform's id and revoked, unless the notice is about an older grant (signed before
 * the current one began: replayed or late, it must not undo a reconnect that came after it).
 */
export class PlatformRemovals {
  constructor(
    private readonly lifecycle: AccountLifecycle,
    private readonly logger: Logger,
  ) {}

  async removed(
    provider: ProviderName,
    externalId: string,
    reason: RemovalReason,
    eventTimeMs: number | null,
    detail: Record<string, unknown>,
  ): Promise<RemovalOutcome> {
    const account = await this.lifecycle.findByPlatformId(provider, externalId);
    if (!account) return 'no_such_account';
    if (await this.lifecycle.predatesGrant(account, eventTimeMs)) return 'predates_grant';
    await this.lifecycle.revokedByPlatform(provider, externalId, reason, detail);
    return 'revoked';
  }

  /**
   * Meta's callbacks name the user by an id whose kind Meta does not document (the Data Deletion
   * Request Callback page says "an app-scoped ID"; the code exchange's user_id is also "app-scoped",
   * /me's user_id is not): the account is found by either of the ids stored at connect. A callback
   * for nobody we hold is logged, and acknowledged by the route, or Meta would keep retrying it.
   */
  async removedByAnyId(
    provider: ProviderName,
    userId: string,
    reason: RemovalReason,
    eventTimeMs: number | null,
    detail: Record<string, unknown>,
  ): Promise<RemovalOutcome> {
    const found = await this.lifecycle.findByAnyPlatformId(provider, userId);
    if (!found) {
      this.logger.info(
        { provider, reason, platformUserId: userId },
        'Meta callback names no Instagram account we hold; acknowledged',
      );
      return 'no_such_account';
    }
    if (await this.lifecycle.predatesGrant(found.account, eventTimeMs)) return 'predates_grant';
    await this.lifecycle.revokedByPlatform(provider, found.account.externalAccountId, reason, {
      ...detail,
      matchedOn: found.matchedOn,
    });
    return 'revoked';
  }
}
