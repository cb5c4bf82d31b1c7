import type { TokenCipher } from '../crypto/tokenCipher.js';
import type { Clock } from '../domain/clock.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import type { PublicationRepository } from '../store/publicationRepository.js';
import { countTokensByKey, type RotationOutcome, type RotationProgress, rotateKeys } from './keyRotation.js';

/** The token encryption keys: which key seals how many stored tokens, and rotation to the first. */
export class KeyService {
  constructor(
    private readonly deps: {
      accounts: AccountRepository;
      ledger: LedgerRepository;
      /** The publications' sealed fields use the same keyring (issue 13). */
      publications: PublicationRepository;
      cipher: TokenCipher;
      clock: Clock;
    },
  ) {}

  /** The keyring's key ids, the first (which encrypts) first. */
  get keyIds(): readonly string[] {
    return this.deps.cipher.keyIds;
  }

  get primaryKeyId(): string {
    return this.deps.cipher.primaryKeyId;
  }

  /** Stored sealed values (tokens and publications' fields) per key id, including ids no longer in the keyring. */
  countTokensByKey(): Promise<Map<string, number>> {
    return countTokensByKey(this.deps.accounts, this.deps.publications);
  }

  /** Re-encrypts every stored token and publication value under the first key (see keyRotation.ts). */
  rotate(
    options: { batchSize?: number; onProgress?: (progress: RotationProgress) => void } = {},
  ): Promise<RotationOutcome> {
    const { accounts, publications, ledger, cipher, clock } = this.deps;
    return rotateKeys({ accounts, publications, ledger }, cipher, { ...options, now: () => clock.now() });
  }
}
