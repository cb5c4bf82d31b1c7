import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type ColumnDefinitionBuilder, type Kysely, sql } from 'kysely';
import type { StoreDialect } from './dialect.js';

/**
 * The parts of each dialect outside the account store: the DDL migrations write differently, the
 * database's own clock, and what makes a database that answers unable to take writes. Spread into
 * `postgresDialect` and `sqliteDialect`, so the `StoreDialect` type makes a third database name
 * them too.
 */
export type DialectOperations = Pick<StoreDialect, 'schema' | 'clockNow' | 'storageProblem'>;

// biome-ignore lint/suspicious/noExplicitAny: migrations work on the schema as it was then, not as typed now.
type AnyDb = Kysely<any>;

/** What migrations write differently. */
export interface SchemaDialect {
  /** An auto-incrementing 64-bit primary key (the ledger's `seq`): its column type and constraint. */
  readonly serialPrimaryKey: {
    type: 'bigserial' | 'integer';
    build(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  };
  /** Leaves this percentage of each page of `table` free (HOT updates), or the default (null). */
  setFillFactor(db: AnyDb, table: string, percent: number | null): Promise<void>;
  /** Issue 12 (migration 011): drops the CHECK listing providers from social_accounts, or adds it back. */
  dropProviderCheck(db: AnyDb): Promise<void>;
  addProviderCheck(db: AnyDb): Promise<void>;
}

const PROVIDER_CHECK = `check (provider in ('instagram', 'tiktok', 'youtube'))`;

/** The provider CHECK as Kysely wrote it into SQLite's schema (001_social_accounts). */
const PROVIDER_CHECK_SQLITE =
  /, constraint "social_accounts_provider_check" check \(provider in \('instagram', 'tiktok', 'youtube'\)\)/;

export const postgresOperations: DialectOperations = {
  schema: {
    serialPrimaryKey: { type: 'bigserial', build: (column) => column.primaryKey() },
    async setFillFactor(db, table, percent) {
      if (percent === null) await sql`alter table ${sql.table(table)} reset (fillfactor)`.execute(db);
      else await sql`alter table ${sql.table(table)} set (fillfactor = ${sql.lit(percent)})`.execute(db);
    },
    async dropProviderCheck(db) {
      await sql`alter table social_accounts drop constraint social_accounts_provider_check`.execute(db);
    },
    async addProviderCheck(db) {
      await sql`alter table social_accounts add constraint social_accounts_provider_check ${sql.raw(PROVIDER_CHECK)}`.execute(
        db,
      );
    },
  },
  clockNow: () => sql`select cast(extract(epoch from clock_timestamp()) * 1000 as bigint) as now`,
  // The server's disk is the server's business; a full one shows as failed writes.
  storageProblem: async () => null,
};

/**
 * Below this much free space the SQLite default counts as down: a read still answers on a full
 * disk, but refreshes cannot commit (SQLITE_FULL), so a load balancer should look elsewhere.
 */
const SQLITE_MIN_FREE_BYTES = 1024 * 1024;

export const sqliteOperations: DialectOperations = {
  schema: {
    serialPrimaryKey: { type: 'integer', build: (column) => column.primaryKey().autoIncrement() },
    // SQLite has no fill factor.
    setFillFactor: async () => {},
    async dropProviderCheck(db) {
      await rebuildSqliteTable(db, 'social_accounts', (create) => {
        const without = create.replace(PROVIDER_CHECK_SQLITE, '');
        if (without === create) throw new Error('social_accounts_provider_check not found');
        return without;
      });
    },
    async addProviderCheck(db) {
      await rebuildSqliteTable(db, 'social_accounts', (create) =>
        create.replace(
          'constraint "social_accounts_status_check"',
          `constraint "social_accounts_provider_check" ${PROVIDER_CHECK}, constraint "social_accounts_status_check"`,
        ),
      );
    },
  },
  clockNow: () => sql`select cast((julianday('now') - 2440587.5) * 86400000 as integer) as now`,
  async storageProblem(location) {
    const disk = await statfs(dirname(location.sqlitePath)).catch(() => null);
    return disk !== null && disk.bavail * disk.bsize < SQLITE_MIN_FREE_BYTES ? 'disk_full' : null;
  },
};

/**
 * SQLite cannot drop or add a CHECK: build the table again from its own CREATE statement (as
 * edited), copy the rows (same column order), swap the names and recreate its indexes.
 */
async function rebuildSqliteTable(db: AnyDb, table: string, edit: (create: string) => string): Promise<void> {
  const created = await sql<{
    sql: string;
  }>`select sql from sqlite_master where type = 'table' and name = ${table}`.execute(db);
  const indexes = await sql<{
    sql: string;
  }>`select sql from sqlite_master where type = 'index' and tbl_name = ${table} and sql is not null`.execute(
    db,
  );
  const original = created.rows[0]?.sql;
  if (original === undefined) throw new Error(`table ${table} not found`);
  const rebuilt = `${table}_rebuild`;
  const create = edit(original).replace(/^create table\s+"?[a-z_]+"?/i, `create table "${rebuilt}"`);
  await sql.raw(create).execute(db);
  await sql.raw(`insert into "${rebuilt}" select * from "${table}"`).execute(db);
  await sql.raw(`drop table "${table}"`).execute(db);
  await sql.raw(`alter table "${rebuilt}" rename to "${table}"`).execute(db);
  for (const index of indexes.rows) await sql.raw(index.sql).execute(db);
}
