import type { TokenField } from '../crypto/tokenCipher.js';

/**
 * Plaintexts of recently decrypted tokens: for each of the last 10,000 accounts read or written, the
 * last ciphertext of each column and its plaintext. A row whose ciphertext is unchanged needs no
 * second AES-GCM decryption; anything else (a new token, a ciphertext copied in from another row,
 * a rotated key) does not match and is decrypted and authenticated as always. Looked up by account
 * id, then compared whole: hashing the ciphertexts themselves cost more than half a decryption.
 * Oldest account out first. It holds nothing the process would not hold anyway while serving the
 * token; it never leaves memory.
 */
export class OpenedTokens {
  private readonly accounts = new Map<
    string,
    Partial<Record<TokenField, { ciphertext: string; plaintext: string }>>
  >();

  constructor(private readonly capacity = 10_000) {}

  open(accountId: string, field: TokenField, ciphertext: string, decrypt: () => string): string {
    const opened = this.accounts.get(accountId)?.[field];
    if (opened !== undefined && opened.ciphertext === ciphertext) return opened.plaintext;
    const plaintext = decrypt();
    this.remember(accountId, field, ciphertext, plaintext);
    return plaintext;
  }

  /** A token this process has just decrypted, or encrypted and stored. */
  remember(accountId: string, field: TokenField, ciphertext: string, plaintext: string): void {
    let entry = this.accounts.get(accountId);
    if (entry === undefined) {
      if (this.accounts.size >= this.capacity) this.accounts.delete(this.accounts.keys().next().value!);
      entry = {};
      this.accounts.set(accountId, entry);
    }
    entry[field] = { ciphertext, plaintext };
  }
}
