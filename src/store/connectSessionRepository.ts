import type { Selectable } from 'kysely';
import type { ProviderName } from '../domain/providerName.js';
import type { StoreDatabase } from './database.js';
import type { ConnectSessionsTable } from './schema.js';

export interface ConnectSessionRecord {
  id: string;
  provider: ProviderName;
  ownerId: string;
  returnTo: string;
  /** As stored: a ciphertext of the token keyring, or null where the platform takes no PKCE. */
  sealedCodeVerifier: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

/** What presenting a state found: the session (now spent), or why there is none to use. */
export type ConsumeOutcome =
  | { kind: 'ok'; session: ConnectSessionRecord }
  | { kind: 'unknown' }
  | { kind: 'reused'; session: ConnectSessionRecord }
  | { kind: 'expired'; session: ConnectSessionRecord };

/** Pending authorizations, keyed by the hash of their state. */
export class ConnectSessionRepository {
  constructor(private readonly store: StoreDatabase) {}

  async insert(session: Omit<ConnectSessionRecord, 'usedAt'>): Promise<void> {
    await this.store.db
      .insertInto('connect_sessions')
      .values({
        id: session.id,
        provider: session.provider,
        owner_id: session.ownerId,
        return_to: session.returnTo,
        code_verifier: session.sealedCodeVerifier,
        created_at: session.createdAt,
        expires_at: session.expiresAt,
        used_at: null,
      })
      .execute();
  }

  async findById(id: string): Promise<ConnectSessionRecord | null> {
    const row = await this.store.db
      .selectFrom('connect_sessions')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? toRecord(row) : null;
  }

  /**
   * Spends the session. One conditional UPDATE: of two callbacks racing with the same state, exactly
   * one sees a changed row, on both databases. An expired session is spent too, so that it cannot be
   * retried, but reported as expired.
   */
  async consume(id: string, now: number): Promise<ConsumeOutcome> {
    const result = await this.store.db
      .updateTable('connect_sessions')
      .set({ used_at: now })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    const session = await this.findById(id);
    if (session === null) return { kind: 'unknown' };
    if (Number(result.numUpdatedRows) !== 1) return { kind: 'reused', session };
    if (now >= session.expiresAt) return { kind: 'expired', session };
    return { kind: 'ok', session };
  }

  /** Forgets sessions that expired long ago: they only served to tell "expired" from "unknown". */
  async deleteExpiredBefore(cutoff: number): Promise<number> {
    const result = await this.store.db
      .deleteFrom('connect_sessions')
      .where('expires_at', '<', cutoff)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toRecord(row: Selectable<ConnectSessionsTable>): ConnectSessionRecord {
  return {
    id: row.id,
    provider: row.provider as ProviderName,
    ownerId: row.owner_id,
    returnTo: row.return_to,
    sealedCodeVerifier: row.code_verifier,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    usedAt: row.used_at === null ? null : Number(row.used_at),
  };
}
