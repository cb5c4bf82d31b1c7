import type { StatementCache } from './sqliteConnection.js';

/**
 * The two writes a refresh makes on SQLite, the lease take and the token save, each one
 * transaction over a whole batch. The SQL is the repository's (compiled by Kysely, one JSON
 * parameter per batch); what is here is how they run, synchronously, on one better-sqlite3
 * connection: the writer thread's own (sqliteWriterThread.ts), or the main one inside a transaction
 * the repository already holds. Nothing here may touch anything but its connection: it runs on
 * another thread.
 */

export interface CompiledStatement {
  sql: string;
  parameters: readonly unknown[];
}

export type SqliteRow = Record<string, unknown>;

export interface LeaseWrite {
  /** Reads each requested row's current lease holder. */
  states: CompiledStatement;
  /** Takes the lease of each requested row that is free, returning the rows it took. */
  take: CompiledStatement;
}

export interface SaveWrite {
  /** Writes the tokens of each row that passes its compare-and-set, returning the rows written. */
  update: CompiledStatement;
  /** Ledger rows (oauth_events columns) to append for the accounts actually written. */
  events: SqliteRow[];
}

export interface LeaseOutcome {
  states: SqliteRow[];
  rows: SqliteRow[];
}

const APPEND_EVENT = `insert into oauth_events (id, account_id, type, reason, provider_error_code, detail, created_at)
  values (?, ?, ?, ?, ?, ?, ?)`;

/**
 * One write transaction (IMMEDIATE: the write lock is taken first, so the read of who held each
 * lease and the take cannot be split by another process's take). Inside a transaction the
 * connection already holds, better-sqlite3 makes it a savepoint.
 */
export function takeLeases(prepared: StatementCache, write: LeaseWrite): LeaseOutcome {
  return prepared.connection
    .transaction(() => ({
      states: prepared.prepare(write.states.sql).all(...write.states.parameters) as SqliteRow[],
      rows: prepared.prepare(write.take.sql).all(...write.take.parameters) as SqliteRow[],
    }))
    .immediate();
}

/** The tokens and their ledger rows, in one commit: a refresh is in the ledger exactly when stored. */
export function saveTokens(prepared: StatementCache, write: SaveWrite): SqliteRow[] {
  return prepared.connection
    .transaction(() => {
      const rows = prepared.prepare(write.update.sql).all(...write.update.parameters) as SqliteRow[];
      const saved = new Set(rows.map((row) => row.id));
      const append = prepared.prepare(APPEND_EVENT);
      for (const event of write.events) {
        if (!saved.has(event.account_id)) continue;
        append.run(
          event.id,
          event.account_id,
          event.type,
          event.reason ?? null,
          event.provider_error_code ?? null,
          event.detail ?? null,
          event.created_at,
        );
      }
      return rows;
    })
    .immediate();
}
