import type { SocialAccount } from '../../src/domain/account.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import type { SeedAccountInput } from '../../src/simulator/state.js';
import type { AccountRepository } from '../../src/store/accountRepository.js';

/**
 * An account both sides know: registered with the simulator (as if its user had connected) and
 * stored in our database with the tokens the simulator issued.
 */
export async function insertSeededAccount(
  accounts: AccountRepository,
  simulator: ProviderSimulator,
  provider: ProviderName,
  seed: SeedAccountInput,
  options: { ownerId?: string; now?: number; withoutRefreshToken?: boolean } = {},
): Promise<SocialAccount> {
  const seeded = simulator.seedAccount(provider, seed);
  return accounts.insert(
    {
      ownerId: options.ownerId ?? 'owner-1',
      provider,
      externalAccountId: seeded.externalAccountId,
      displayName: seeded.displayName,
      accessToken: seeded.accessToken,
      refreshToken: options.withoutRefreshToken ? null : seeded.refreshToken,
      expiresAt: seeded.accessExpiresAt,
      refreshTokenExpiresAt: seeded.refreshExpiresAt,
      scopes: seeded.scopes,
      tokenIssuedAt: seeded.issuedAt,
    },
    options.now ?? Date.now(),
  );
}
