import { TokenCipher, TokenDecryptionError, type TokenField } from '../crypto/tokenCipher.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';

export interface RotationProgress {
  scanned: number;
  total: number;
}

export interface RotationOutcome {
  scanned: number;
  reencrypted: number;
  /** Values that changed under us (a refresh wrote new tokens, already under the first key). */
  changedConcurrently: number;
  /** Accounts whose token no key of the keyring could decrypt: left as they are, and named. */
  undecryptable: string[];
}

/**
 * `keys rotate`: re-encrypts every token not made with the first key of the keyring, a batch at a
 * time. Each value is swapped only if the row still holds the ciphertext we read, so a refresh
 * that runs at the same moment is never overwritten with an older token.
 */
export async function rotateKeys(
  accounts: AccountRepository,
  ledger: LedgerRepository,
  cipher: TokenCipher,
  options: { batchSize?: number; now: () => number; onProgress?: (progress: RotationProgress) => void },
): Promise<RotationOutcome> {
  const batchSize = options.batchSize ?? 500;
  const total = await accounts.count();
  const outcome: RotationOutcome = { scanned: 0, reencrypted: 0, changedConcurrently: 0, undecryptable: [] };
  let afterId: string | null = null;
  for (;;) {
    const rows = await accounts.ciphertexts.ciphertextBatch(afterId, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      let changed = false;
      const fields: Array<[TokenField, string | null]> = [
        ['access_token', row.oauth_access_token],
        ['refresh_token', row.oauth_refresh_token],
      ];
      for (const [field, sealed] of fields) {
        if (sealed === null || TokenCipher.keyIdOf(sealed) === cipher.primaryKeyId) continue;
        const binding = { accountId: row.id, field };
        let plaintext: string;
        try {
          plaintext = cipher.decrypt(sealed, binding);
        } catch (error) {
          // One bad row (a key missing from the keyring, a copied value) must not stop the others.
          if (!(error instanceof TokenDecryptionError)) throw error;
          if (!outcome.undecryptable.includes(row.id)) outcome.undecryptable.push(row.id);
          continue;
        }
        const resealed = cipher.encrypt(plaintext, binding);
        if (await accounts.ciphertexts.replaceCiphertext(row.id, field, sealed, resealed)) {
          outcome.reencrypted++;
          changed = true;
        } else {
          outcome.changedConcurrently++;
        }
      }
      if (changed) {
        await ledger.append(
          {
            accountId: row.id,
            type: 'keys_rotated',
            reason: 'rotate',
            detail: { keyId: cipher.primaryKeyId },
          },
          options.now(),
        );
      }
    }
    outcome.scanned += rows.length;
    afterId = rows.at(-1)!.id;
    options.onProgress?.({ scanned: outcome.scanned, total });
  }
  return outcome;
}

/** `keys status`: how many stored tokens each key id encrypts, to know when an old key can go. */
export async function countTokensByKey(
  accounts: AccountRepository,
  batchSize = 1000,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let afterId: string | null = null;
  for (;;) {
    const rows = await accounts.ciphertexts.ciphertextBatch(afterId, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      for (const sealed of [row.oauth_access_token, row.oauth_refresh_token]) {
        if (sealed === null) continue;
        const keyId = TokenCipher.keyIdOf(sealed) ?? '(unknown format)';
        counts.set(keyId, (counts.get(keyId) ?? 0) + 1);
      }
    }
    afterId = rows.at(-1)!.id;
  }
  return counts;
}
