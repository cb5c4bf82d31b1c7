import { sql } from 'kysely';
import type { AccountRow, LeasedRow, LeaseRequest } from './accountTypes.js';
import type { StoreDatabase } from './database.js';
import type { InputColumns, StoreDialect, TokenSaveStatement } from './dialect.js';
import { postgresOperations } from './schemaDialects.js';

/**
 * PostgreSQL's clock in epoch ms: what refresh leases are measured by there (the statement's
 * start, the same for every row of a batch).
 */
const POSTGRES_NOW_MS = sql<number>`cast(extract(epoch from now()) * 1000 as bigint)`;

/** PostgreSQL: a server shared by processes on several machines; row locks that can be skipped. */
export const postgresDialect: StoreDialect = {
  kind: 'postgres',
  ...postgresOperations,
  supportsSkipLocked: true,
  batchesReadsById: true,
  // One batch of each kind on the wire at a time (measured in the refresh storm: fewer, larger
  // statements cut PostgreSQL's CPU by a quarter).
  oneBatchInFlight: () => true,
  // The database's clock, not the caller's: processes on several machines share the leases, and
  // one whose clock runs ahead must not see a live lease as lapsed (issue 10, item 4).
  leaseClock: () => POSTGRES_NOW_MS,
  // Due times too: the caller gives only the offset from its own now. A test that moves one manual
  // clock through months for everything (the simulator, the service, the database) sets
  // `scheduleClock`, since PostgreSQL's own clock cannot be moved.
  scheduleTime: (store, { at, now }) => {
    const offset = Math.round(at - now);
    return store.scheduleClock
      ? sql<number>`${store.scheduleClock.now() + offset}`
      : sql<number>`(${POSTGRES_NOW_MS} + ${offset})`;
  },

  inputRows<Columns extends InputColumns>(
    columns: Columns,
    rows: Array<{ [Name in keyof Columns]: string | number | null }>,
  ) {
    const names = Object.keys(columns);
    const definition = names.map((name) => `${name} ${columns[name]}`).join(', ');
    return sql`select * from jsonb_to_recordset(cast(${JSON.stringify(rows)} as jsonb)) as input_rows(${sql.raw(definition)})`;
  },

  async saveTokens(store: StoreDatabase, { input, update, compareAndSet, events }: TokenSaveStatement) {
    // One statement, so one round trip and one commit: the rows are locked in id order first (two
    // batches that overlap, two savers of one account after a lease lapsed, queue instead of
    // deadlocking), and the ledger rows are inserted for the rows actually saved.
    const ledger = this.inputRows(
      {
        id: 'text',
        account_id: 'text',
        type: 'text',
        reason: 'text',
        provider_error_code: 'text',
        detail: 'text',
        created_at: 'bigint',
      },
      events.map((event) => ({
        id: event.id,
        account_id: event.account_id,
        type: event.type,
        reason: event.reason ?? null,
        provider_error_code: event.provider_error_code ?? null,
        detail: event.detail ?? null,
        created_at: event.created_at,
      })),
    );
    const result = await sql<AccountRow>`
      with input as (${input}),
      locked as materialized (
        select social_accounts.id from social_accounts join input on input.id = social_accounts.id
        order by social_accounts.id for update of social_accounts),
      saved as (
        ${update}
        from input join locked on locked.id = input.id
        where ${compareAndSet}
        returning social_accounts.*),
      logged as (
        insert into oauth_events (id, account_id, type, reason, provider_error_code, detail, created_at)
        select ledger.* from (${ledger}) as ledger join saved on saved.id = ledger.account_id)
      select * from saved`.execute(store.db);
    return result.rows;
  },

  /**
   * One statement. Rows another transaction is writing right now are skipped, not waited for:
   * their lease is not taken this time (the caller watches the row instead), and two batches that
   * overlap never wait on each other. The lock also reads who held the lease before, atomically.
   * By the database's clock; only the lease's length comes from the caller.
   */
  async takeLeases(store: StoreDatabase, requests: LeaseRequest[]) {
    const input = this.inputRows(
      { id: 'text', owner: 'text', lease_ms: 'bigint' },
      requests.map((request) => ({
        id: request.id,
        owner: request.owner,
        lease_ms: request.until - request.now,
      })),
    );
    const result = await sql<LeasedRow>`
      with input as (${input}),
      clock as (select ${POSTGRES_NOW_MS} as now),
      locked as materialized (
        select social_accounts.id, social_accounts.refresh_lease_owner as previous_owner
        from social_accounts join input on input.id = social_accounts.id cross join clock
        where social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= clock.now
        for update of social_accounts skip locked)
      update social_accounts
        set refresh_lease_owner = input.owner, refresh_lease_until = clock.now + input.lease_ms
      from input join locked on locked.id = input.id cross join clock
      where social_accounts.id = input.id
        and (social_accounts.refresh_lease_until is null or social_accounts.refresh_lease_until <= clock.now)
      returning social_accounts.*, locked.previous_owner`.execute(store.db);
    return new Map(result.rows.map((row) => [row.id, row]));
  },
};
