import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { ProviderName } from '../domain/providerName.js';
import type { Provider } from '../platforms/provider.js';
import type { PlatformPublisher } from '../publishing/platformPublisher.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { StoreDatabase } from '../store/database.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { PublicationRepository } from '../store/publicationRepository.js';
import type { MediaLinks } from './publications/mediaLinks.js';
import type { PublicationRunner } from './publications/publicationRunner.js';
import type { SocialOAuth } from './socialOAuth.js';

/**
 * What a SocialOAuth is built on: the database, the cipher, the repositories and the platform
 * clients. Not part of the facade: routes, CLI commands and library users go through its services.
 * Tests and benchmarks reach these on purpose (they check rows, seed accounts, race leases) through
 * `storeOf`, which the package root does not export.
 */
export interface StoreAccess {
  readonly database: StoreDatabase;
  readonly cipher: TokenCipher;
  readonly accounts: AccountRepository;
  readonly ledger: LedgerRepository;
  readonly providers: Partial<Record<ProviderName, Provider>>;
  readonly publishing: {
    readonly repository: PublicationRepository;
    readonly runner: PublicationRunner;
    readonly mediaLinks: MediaLinks;
    readonly publishers: Partial<Record<ProviderName, PlatformPublisher>>;
  };
}

const stores = new WeakMap<SocialOAuth, StoreAccess>();

/** Called once by SocialOAuth.open for the instance it built. */
export function registerStore(oauth: SocialOAuth, store: StoreAccess): void {
  stores.set(oauth, store);
}

/** Test-only: the store and clients under a SocialOAuth (see StoreAccess). */
export function storeOf(oauth: SocialOAuth): StoreAccess {
  const store = stores.get(oauth);
  if (store === undefined) throw new Error('not a SocialOAuth opened by SocialOAuth.open');
  return store;
}
