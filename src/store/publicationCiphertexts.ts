import type { PublicationSecretField } from '../crypto/tokenCipher.js';
import type { StoreDatabase } from './database.js';

/** The column each sealed publication field lives in (the binding names the field, not the column). */
const COLUMNS = {
  resumable_state: 'resumable_state',
  source_url: 'source_url',
  media_link: 'media_link_token',
} as const satisfies Record<PublicationSecretField, string>;

export const PUBLICATION_SECRET_FIELDS = Object.keys(COLUMNS) as PublicationSecretField[];

export interface PublicationCiphertextRow {
  id: string;
  /** The sealed values as stored, by field; null where the publication holds none. */
  sealed: Record<PublicationSecretField, string | null>;
}

/**
 * Raw ciphertext access to `publications` for key rotation only (`keys rotate`, `keys status`):
 * nothing else sees a publication's sealed values. The account-side twin is ciphertextStore.ts.
 */
export class PublicationCiphertextStore {
  constructor(private readonly store: StoreDatabase) {}

  private get db() {
    return this.store.db;
  }

  /** Publications holding at least one sealed value, in id order after `afterId`, a batch at a time. */
  async ciphertextBatch(afterId: string | null, limit: number): Promise<PublicationCiphertextRow[]> {
    let query = this.db
      .selectFrom('publications')
      .select(['id', 'resumable_state', 'source_url', 'media_link_token'])
      .where((eb) =>
        eb.or([
          eb('resumable_state', 'is not', null),
          eb('source_url', 'is not', null),
          eb('media_link_token', 'is not', null),
        ]),
      )
      .orderBy('id')
      .limit(limit);
    if (afterId !== null) query = query.where('id', '>', afterId);
    const rows = await query.execute();
    return rows.map((row) => ({
      id: row.id,
      sealed: {
        resumable_state: row.resumable_state,
        source_url: row.source_url,
        media_link: row.media_link_token,
      },
    }));
  }

  /** How many publications hold a sealed value (the progress bar's total). */
  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('publications')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where((eb) =>
        eb.or([
          eb('resumable_state', 'is not', null),
          eb('source_url', 'is not', null),
          eb('media_link_token', 'is not', null),
        ]),
      )
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Swaps one ciphertext for another only if the row still holds the old one: a worker that saved
   * new state (already under the first key) meanwhile is never overwritten with an older value.
   */
  async replaceCiphertext(
    id: string,
    field: PublicationSecretField,
    expected: string,
    replacement: string,
  ): Promise<boolean> {
    const column = COLUMNS[field];
    const result = await this.db
      .updateTable('publications')
      .set({ [column]: replacement })
      .where('id', '=', id)
      .where(column, '=', expected)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
