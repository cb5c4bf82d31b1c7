import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import pg from 'pg';
import type { Clock } from '../domain/clock.js';
import { type Logger, silentLogger } from '../domain/logger.js';
import type { Database } from './schema.js';
import { StatementCache } from './sqliteConnection.js';
import { SqliteWriter, WRITER_UNAVAILABLE_CODES } from './sqliteWriter.js';

export type DatabaseKind = 'sqlite' | 'postgres';

export interface StoreDatabase {
  db: Kysely<Database>;
  kind: DatabaseKind;
  /** Where it lives, without credentials: for messages. */
  description: string;
  /** SQLite: the service's own connection, the one Kysely runs on (writes inside a repository transaction run on it). */
  sqlite?: StatementCache;
  /** SQLite on a file: the thread that runs the batched refresh writes (see sqliteWriter.ts). */
  writer?: SqliteWriter;
  /**
   * PostgreSQL: stands in for the server's clock in due times (`next_refresh_at`). Only for tests
   * that move one manual clock through months for the simulator, the service and the database
   * alike (the server's `now()` cannot be moved); unset, the server's clock decides.
   */
  scheduleClock?: Clock;
  close(): Promise<void>;
}

export interface DatabaseLocation {
  /** postgres://… or null for SQLite. */
  databaseUrl: string | null;
  sqlitePath: string;
  /** PostgreSQL pool size per process. */
  poolSize?: number;
  /** Where an idle PostgreSQL connection's failure is reported (issue 10: it was swallowed). */
  logger?: Logger;
  /** See `StoreDatabase.scheduleClock` (tests only). */
  scheduleClock?: Clock;
}

const INT8_OID = 20;

export function openDatabase(location: DatabaseLocation): StoreDatabase {
  if (location.databaseUrl) {
    const store = openPostgres(
      location.databaseUrl,
      location.poolSize ?? 10,
      location.logger ?? silentLogger,
    );
    return location.scheduleClock ? { ...store, scheduleClock: location.scheduleClock } : store;
  }
  return openSqlite(location.sqlitePath);
}

function openPostgres(url: string, poolSize: number, logger: Logger): StoreDatabase {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Times are epoch milliseconds in BIGINT columns; they fit a double exactly, so read them as
    // numbers, like SQLite does, instead of pg's default strings. Scoped to this pool, not global.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (value: string) => Number(value)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its connection (server restart) must not crash the process; the pool
  // replaces it. Logged: a database that keeps dropping connections is worth knowing about.
  pool.on('error', (error: Error & { code?: string }) => {
    logger.warn(
      { err: { name: error.name, message: error.message, code: error.code ?? null } },
      'an idle PostgreSQL connection failed; the pool will open another',
    );
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const parsed = new URL(url);
  return {
    db,
    kind: 'postgres',
    description: `postgres://${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`,
    close: () => db.destroy(),
  };
}

function openSqlite(path: string): StoreDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = StatementCache.open(path);
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  // An in-memory database cannot be shared with another thread.
  const writer = path === ':memory:' ? undefined : new SqliteWriter(path);
  return {
    db,
    kind: 'sqlite',
    description: `sqlite:${path}`,
    sqlite,
    writer,
    async close() {
      await writer?.close();
      await db.destroy();
    },
  };
}

/**
 * Kysely begins SQLite transactions with a plain BEGIN, which takes the write lock only at the
 * first write. If the transaction has read by then and another connection (the writer thread,
 * another process) holds the lock or has committed since, SQLite fails that write at once with
 * SQLITE_BUSY instead of waiting (waiting could deadlock). BEGIN IMMEDIATE takes the lock first,
 * and waits for it like any write.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.settings);
  }
}

/**
 * True for errors that mean "the database cannot serve right now" rather than "this query is
 * wrong": a PostgreSQL server restarting or unreachable, a SQLite file that is locked too long or
 * on a full disk. Callers answer those with 503 and Retry-After, not 500.
 */
/**
 * A unique constraint refused a row (PostgreSQL SQLSTATE 23505; SQLite SQLITE_CONSTRAINT_UNIQUE or
 * _PRIMARYKEY): another writer stored the same key first.
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    // PostgreSQL SQLSTATE: class 08 connection exceptions, 57P0x shutdowns, 53300 too many clients.
    if (/^08/.test(code) || /^57P0[1-3]$/.test(code) || code === '53300') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code))
      return true;
    if (/^SQLITE_(FULL|BUSY|LOCKED|IOERR|CANTOPEN|READONLY)/.test(code)) return true;
    // Ours (sqliteWriter.ts): a write after close, or the writer thread gone.
    if ((WRITER_UNAVAILABLE_CODES as readonly string[]).includes(code)) return true;
  }
  // pg reports a dropped connection without a code.
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(
    error.message,
  );
}
