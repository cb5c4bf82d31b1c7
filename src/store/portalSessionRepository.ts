import type { StoreDatabase } from './database.js';

export interface PortalSessionRecord {
  id: string;
  ownerId: string;
  createdAt: number;
  expiresAt: number;
}

/** Status-page sessions, keyed by the hash of their token. */
export class PortalSessionRepository {
  constructor(private readonly store: StoreDatabase) {}

  async insert(record: PortalSessionRecord): Promise<void> {
    await this.store.db
      .insertInto('portal_sessions')
      .values({
        id: record.id,
        owner_id: record.ownerId,
        created_at: record.createdAt,
        expires_at: record.expiresAt,
      })
      .execute();
  }

  /** The session if it exists and has not expired. */
  async findLive(id: string, now: number): Promise<PortalSessionRecord | null> {
    const row = await this.store.db
      .selectFrom('portal_sessions')
      .selectAll()
      .where('id', '=', id)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return row
      ? {
          id: row.id,
          ownerId: row.owner_id,
          createdAt: Number(row.created_at),
          expiresAt: Number(row.expires_at),
        }
      : null;
  }

  async deleteExpiredBefore(cutoff: number): Promise<number> {
    const result = await this.store.db
      .deleteFrom('portal_sessions')
      .where('expires_at', '<', cutoff)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
