import type { Selectable } from 'kysely';
import type { StoreDatabase } from './database.js';
import type { ApiKeysTable } from './schema.js';

export interface ApiKeyRecord {
  id: string;
  name: string;
  keyHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** API keys as stored: a hash, never the key. */
export class ApiKeyRepository {
  constructor(private readonly store: StoreDatabase) {}

  async insert(record: Omit<ApiKeyRecord, 'lastUsedAt' | 'revokedAt'>): Promise<void> {
    await this.store.db
      .insertInto('api_keys')
      .values({
        id: record.id,
        name: record.name,
        key_hash: record.keyHash,
        created_at: record.createdAt,
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    const row = await this.store.db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.store.db
      .selectFrom('api_keys')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toRecord);
  }

  async count(): Promise<number> {
    const row = await this.store.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** False when there is no such key or it was already revoked. */
  async revoke(id: string, now: number): Promise<boolean> {
    const result = await this.store.db
      .updateTable('api_keys')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async touch(id: string, now: number): Promise<void> {
    await this.store.db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
  }
}

function toRecord(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    keyHash: row.key_hash,
    createdAt: Number(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
  };
}
