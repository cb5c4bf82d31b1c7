import type { TokenField } from '../crypto/tokenCipher.js';
import type { StoreDatabase } from './database.js';

/**
 * Raw ciphertext access to `social_accounts` for key rotation only: nothing else sees a ciphertext.
 */
export class CiphertextStore {
  constructor(private readonly store: StoreDatabase) {}

  private get db() {
    return this.store.db;
  }

  /** Raw rows for key rotation: ciphertexts as stored, a batch at a time. */
  async ciphertextBatch(afterId: string | null, limit: number) {
    let query = this.db
      .selectFrom('social_accounts')
      .select(['id', 'oauth_access_token', 'oauth_refresh_token'])
      .orderBy('id')
      .limit(limit);
    if (afterId !== null) query = query.where('id', '>', afterId);
    return query.execute();
  }

  /** Swaps one ciphertext for another only if the row still holds the old one (no lost refresh). */
  async replaceCiphertext(
    id: string,
    field: TokenField,
    expected: string,
    replacement: string,
  ): Promise<boolean> {
    const column = field === 'access_token' ? 'oauth_access_token' : 'oauth_refresh_token';
    const result = await this.db
      .updateTable('social_accounts')
      .set({ [column]: replacement })
      .where('id', '=', id)
      .where(column, '=', expected)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
