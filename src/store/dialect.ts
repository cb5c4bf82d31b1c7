import type { Insertable, RawBuilder } from 'kysely';
import type { AccountRow, LeasedRow, LeaseRequest, ScheduleTime } from './accountTypes.js';
import type { DatabaseKind, StoreDatabase } from './database.js';
import { postgresDialect } from './postgresDialect.js';
import type { OAuthEventsTable } from './schema.js';
import type { SchemaDialect } from './schemaDialects.js';
import { sqliteDialect } from './sqliteDialect.js';

/** Column types of an input relation (see `inputRows`). */
export type InputColumns = Record<string, 'text' | 'integer' | 'bigint'>;

/** The database-independent parts of one batched token save, for a dialect to run. */
export interface TokenSaveStatement {
  /** The batch's rows as a relation (from this dialect's `inputRows`). */
  input: RawBuilder<unknown>;
  /** `update social_accounts set …` (no FROM, no WHERE). */
  update: RawBuilder<unknown>;
  /** The per-row compare-and-set, over `social_accounts` and `input`. */
  compareAndSet: RawBuilder<unknown>;
  /** Ledger rows to append, only for the accounts actually saved. */
  events: Array<Insertable<OAuthEventsTable>>;
}

/**
 * Everything in which SQLite and PostgreSQL differ for the account store, in one object per
 * database (what Kysely's `DialectAdapter` does with its capability flags). Code above it asks
 * the dialect, never `store.kind`: a third database is a third object here, and the `DIALECTS`
 * record below does not compile until it exists (no silent fallback to SQLite's SQL).
 */
export interface StoreDialect {
  readonly kind: DatabaseKind;
  /** `FOR UPDATE SKIP LOCKED`: concurrent claimers take disjoint rows without waiting. */
  readonly supportsSkipLocked: boolean;
  /**
   * Reads by id that arrive together are worth one `= any(…)` statement: true where each query is
   * a round trip (a server), false where reads run in-process.
   */
  readonly batchesReadsById: boolean;
  /** Whether only one batch of each kind should be in flight at a time on this store. */
  oneBatchInFlight(store: StoreDatabase): boolean;
  /** The clock refresh leases are measured by, in epoch ms (`now` is the caller's). */
  leaseClock(now: number): RawBuilder<number>;
  /**
   * A time of the refresh schedule (`next_refresh_at`: due-by bounds, claim holds, retries), in
   * epoch ms by the clock due times are measured by: the caller's on SQLite, the database's on
   * PostgreSQL (`now()` plus the caller's `at - now`), where workers on several machines share the
   * schedule and one whose clock runs ahead must not take accounts early (issue 10, item 4).
   */
  scheduleTime(store: StoreDatabase, time: ScheduleTime): RawBuilder<number>;
  /**
   * A batch's per-row values as a relation, passed as one JSON parameter: the statement's text does
   * not grow with the batch, and no value is ever spliced into SQL. Column names and types are
   * ours, never input.
   */
  inputRows<Columns extends InputColumns>(
    columns: Columns,
    rows: Array<{ [Name in keyof Columns]: string | number | null }>,
  ): RawBuilder<unknown>;
  /** Runs one batched token save with its ledger rows in one commit; returns the rows saved. */
  saveTokens(store: StoreDatabase, statement: TokenSaveStatement): Promise<AccountRow[]>;
  /** Takes the refresh leases it can, atomically reading who held each before; rows by id. */
  takeLeases(store: StoreDatabase, requests: LeaseRequest[]): Promise<Map<string, LeasedRow>>;
  /** What migrations write differently (src/store/schemaDialects.ts). */
  readonly schema: SchemaDialect;
  /** A one-row query of the database's own clock, `now` in epoch ms (the clock-skew check at start). */
  clockNow(): RawBuilder<{ now: number | string }>;
  /**
   * Why a database that answers cannot take writes (SQLite: the disk of its file is full), or null.
   * `sqlitePath` is the configured SQLite file.
   */
  storageProblem(location: { sqlitePath: string }): Promise<'disk_full' | null>;
}

/** One dialect per database kind: adding a kind without its dialect is a compile error. */
const DIALECTS: { readonly [Kind in DatabaseKind]: StoreDialect } = {
  postgres: postgresDialect,
  sqlite: sqliteDialect,
};

export function dialectOf(store: Pick<StoreDatabase, 'kind'>): StoreDialect {
  return DIALECTS[store.kind];
}
