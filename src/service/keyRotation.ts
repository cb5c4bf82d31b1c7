import {
  type TokenBinding,
  TokenCipher,
  TokenDecryptionError,
  type TokenField,
} from '../crypto/tokenCipher.js';
import type { AccountRepository } from '../store/accountRepository.js';
import type { LedgerRepository } from '../store/ledgerRepository.js';
import { PUBLICATION_SECRET_FIELDS } from '../store/publicationCiphertexts.js';
import type { PublicationRepository } from '../store/publicationRepository.js';

export interface RotationProgress {
  /** Rows done so far: accounts first, then publications. */
  scanned: number;
  total: number;
}

export interface RotationTally {
  scanned: number;
  reencrypted: number;
  /** Values that changed under us (a refresh or a publication worker wrote them, already under the first key). */
  changedConcurrently: number;
  /** Rows holding a value no key of the keyring could decrypt: left as they are, and named. */
  undecryptable: string[];
}

/** Accounts (their tokens) at the top level, as before; publications (their sealed fields) beside. */
export interface RotationOutcome extends RotationTally {
  publications: RotationTally;
}

export interface RotationStores {
  accounts: AccountRepository;
  /** Issue 13: the resumable state, source URL and media-link token are sealed with the same keyring. */
  publications: PublicationRepository;
  ledger: LedgerRepository;
}

type Resealed = 'current' | 'reencrypted' | 'changed' | 'undecryptable';

/**
 * Re-seals one value under the first key unless it is already there. The swap only happens if the
 * row still holds what we read, so a value written meanwhile (a refresh, a publication's new state)
 * is never overwritten with an older one.
 */
async function reseal(
  cipher: TokenCipher,
  sealed: string | null,
  binding: TokenBinding,
  replace: (resealed: string) => Promise<boolean>,
): Promise<Resealed> {
  if (sealed === null || TokenCipher.keyIdOf(sealed) === cipher.primaryKeyId) return 'current';
  let plaintext: string;
  try {
    plaintext = cipher.decrypt(sealed, binding);
  } catch (error) {
    // One bad row (a key missing from the keyring, a copied value) must not stop the others.
    if (!(error instanceof TokenDecryptionError)) throw error;
    return 'undecryptable';
  }
  return (await replace(cipher.encrypt(plaintext, binding))) ? 'reencrypted' : 'changed';
}

function tally(outcome: RotationTally, rowId: string, result: Resealed): void {
  if (result === 'reencrypted') outcome.reencrypted++;
  else if (result === 'changed') outcome.changedConcurrently++;
  else if (result === 'undecryptable' && !outcome.undecryptable.includes(rowId)) {
    outcome.undecryptable.push(rowId);
  }
}

const emptyTally = (): RotationTally => ({
  scanned: 0,
  reencrypted: 0,
  changedConcurrently: 0,
  undecryptable: [],
});

/**
 * `keys rotate`: re-encrypts every sealed value not made with the first key of the keyring, a
 * batch at a time: the accounts' tokens, then the publications' sealed fields (resumable state,
 * source URL, media-link token), so that an old key can go without stranding a publication.
 */
export async function rotateKeys(
  stores: RotationStores,
  cipher: TokenCipher,
  options: { batchSize?: number; now: () => number; onProgress?: (progress: RotationProgress) => void },
): Promise<RotationOutcome> {
  const { accounts, publications, ledger } = stores;
  const batchSize = options.batchSize ?? 500;
  const total = (await accounts.count()) + (await publications.ciphertexts.count());
  const outcome: RotationOutcome = { ...emptyTally(), publications: emptyTally() };
  const progress = () =>
    options.onProgress?.({ scanned: outcome.scanned + outcome.publications.scanned, total });

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
        const result = await reseal(cipher, sealed, { accountId: row.id, field }, (resealed) =>
          accounts.ciphertexts.replaceCiphertext(row.id, field, sealed!, resealed),
        );
        tally(outcome, row.id, result);
        if (result === 'reencrypted') changed = true;
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
    progress();
  }

  afterId = null;
  for (;;) {
    const rows = await publications.ciphertexts.ciphertextBatch(afterId, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      for (const field of PUBLICATION_SECRET_FIELDS) {
        const sealed = row.sealed[field];
        // Publication values are bound to the publication's id (see publicationRepository.ts).
        const result = await reseal(cipher, sealed, { accountId: row.id, field }, (resealed) =>
          publications.ciphertexts.replaceCiphertext(row.id, field, sealed!, resealed),
        );
        tally(outcome.publications, row.id, result);
      }
    }
    outcome.publications.scanned += rows.length;
    afterId = rows.at(-1)!.id;
    progress();
  }
  return outcome;
}

/**
 * `keys status`: how many stored sealed values (tokens and publications' sealed fields) each key id
 * encrypts, to know when an old key can go.
 */
export async function countTokensByKey(
  accounts: AccountRepository,
  publications: PublicationRepository,
  batchSize = 1000,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const count = (sealed: string | null) => {
    if (sealed === null) return;
    const keyId = TokenCipher.keyIdOf(sealed) ?? '(unknown format)';
    counts.set(keyId, (counts.get(keyId) ?? 0) + 1);
  };
  let afterId: string | null = null;
  for (;;) {
    const rows = await accounts.ciphertexts.ciphertextBatch(afterId, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) {
      count(row.oauth_access_token);
      count(row.oauth_refresh_token);
    }
    afterId = rows.at(-1)!.id;
  }
  afterId = null;
  for (;;) {
    const rows = await publications.ciphertexts.ciphertextBatch(afterId, batchSize);
    if (rows.length === 0) break;
    for (const row of rows) for (const field of PUBLICATION_SECRET_FIELDS) count(row.sealed[field]);
    afterId = rows.at(-1)!.id;
  }
  return counts;
}
