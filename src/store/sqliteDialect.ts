import { sql } from 'kysely';
import type { AccountRow, LeasedRow, LeaseRequest } from './accountTypes.js';
import type { StoreDatabase } from './database.js';
import type { InputColumns, StoreDialect, TokenSaveStatement } from './dialect.js';
import { sqliteOperations } from './schemaDialects.js';
import type { StatementCache } from './sqliteConnection.js';
import type { SqliteWriter } from './sqliteWriter.js';
import {
  type CompiledStatement,
  type LeaseWrite,
  type SaveWrite,
  type SqliteRow,
  saveTokens as saveSqliteTokens,
  takeLeases as takeSqliteLeases,
} from './sqliteWrites.js';

/** What crosses to the writer thread: the SQL and its parameters, not Kysely's query tree. */
const compiled = (query: CompiledStatement): CompiledStatement => ({
  sql: query.sql,
  parameters: query.parameters,
});

/**
 * A batched SQLite write: on the writer thread, or on the service's own connection inside the
 * repository transaction that holds it (or one of its own, so that Kysely keeps every other
 * statement out while these run).
 */
async function sqliteWrite<T>(
  store: StoreDatabase,
  onWriter: (writer: SqliteWriter) => Promise<T>,
  onConnection: (prepared: StatementCache) => T,
): Promise<T> {
  if (store.writer !== undefined && !store.db.isTransaction) return onWriter(store.writer);
  const run = () => onConnection(store.sqlite!);
  return store.db.isTransaction ? run() : store.db.transaction().execute(async () => run());
}

/** SQLite: one file, one writer at a time, reads in-process; no row locks to skip. */
export const sqliteDialect: StoreDialect = {
  kind: 'sqlite',
  ...sqliteOperations,
  // One writer: a single UPDATE is already exclusive.
  supportsSkipLocked: false,
  // Reads run in-process: batching them would only add a wait.
  batchesReadsById: false,
  // With the writer thread, one batch at a time on it (fewer commits); without it (in memory),
  // batches run on the main connection as they come.
  oneBatchInFlight: (store) => store.writer !== undefined,
  leaseClock: (now) => sql<number>`${now}`,
  // One machine, one clock: the caller's is the database's.
  scheduleTime: (_store, { at }) => sql<number>`${at}`,

  inputRows<Columns extends InputColumns>(
    columns: Columns,
    rows: Array<{ [Name in keyof Columns]: string | number | null }>,
  ) {
    const names = Object.keys(columns);
    return sql`select ${sql.raw(names.map((name) => `value ->> '${name}' as ${name}`).join(', '))} from json_each(${JSON.stringify(rows)})`;
  },

  async saveTokens(store: StoreDatabase, { input, update, compareAndSet, events }: TokenSaveStatement) {
    // SQLite forbids "table.*" in RETURNING and returns the target's columns for "*".
    const write: SaveWrite = {
      update: compiled(
        sql`
        with input as (${input})
        ${update}
        from input
        where ${compareAndSet}
        returning *`.compile(store.db),
      ),
      events: events as SqliteRow[],
    };
    return (await sqliteWrite(
      store,
      (writer) => writer.saveTokens(write),
      (prepared) => saveSqliteTokens(prepared, write),
    )) as AccountRow[];
  },

  /**
   * One IMMEDIATE transaction: the read of who held each lease and the take cannot be split by
   * another process. The write lock is waited for on the writer thread, never on the event loop
   * (better-sqlite3 waits synchronously).
   */
  async takeLeases(store: StoreDatabase, requests: LeaseRequest[]) {
    const ids = JSON.stringify([...new Set(requests.map((request) => request.id))]);
    const input = this.inputRows({ id: 'text', owner: 'text', now: 'bigint', until: 'bigint' }, requests);
    const write: LeaseWrite = {
      states: compiled(
        sql`select id, refresh_lease_owner from social_accounts where id in (select value from json_each(${ids}))`.compile(
          store.db,
        ),
      ),
      // SQLite forbids "table.*" in RETURNING and returns the target's columns for "*".
      take: compiled(
        sql`
        with input as (${input})
        update social_accounts
          set refresh_lease_owner = input.owner, refresh_lease_until = input.until
        from input
        where social_accounts.id = input.id
          and (social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= input.now)
        returning *`.compile(store.db),
      ),
    };
    const outcome = await sqliteWrite(
      store,
      (writer) => writer.takeLeases(write),
      (prepared) => takeSqliteLeases(prepared, write),
    );
    const before = new Map(
      outcome.states.map((state) => [state.id as string, state.refresh_lease_owner as string | null]),
    );
    return new Map<string, LeasedRow>(
      (outcome.rows as AccountRow[]).map((row) => [
        row.id,
        { ...row, previous_owner: before.get(row.id) ?? null },
      ]),
    );
  },
};
