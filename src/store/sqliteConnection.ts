import BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/**
 * The settings every connection to the database file gets, the service's and the writer thread's:
 * WAL lets readers run beside the one writer; busy_timeout makes a connection wait for the write
 * lock instead of failing at once; FULL sync because a lost write can be a spent TikTok refresh
 * token.
 */
export function configureSqlite(connection: BetterSqlite3.Database): void {
  connection.pragma('journal_mode = WAL');
  connection.pragma('busy_timeout = 10000');
  connection.pragma('synchronous = FULL');
  connection.pragma('foreign_keys = ON');
}

/**
 * A connection with its statements kept prepared. Kysely prepares every query anew, and so would
 * the batched writes; for a primary-key read or write, preparing costs more than running it.
 * better-sqlite3 statements can be run again and again, so the most recently used ones are kept
 * (nothing here iterates a statement, which is the one use that would tie one up). It is also the
 * `SqliteDatabase` Kysely's dialect runs on, so Kysely's queries and the batched writes on one
 * connection share one cache.
 */
export class StatementCache implements SqliteDatabase {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();

  constructor(
    readonly connection: BetterSqlite3.Database,
    private readonly size = 256,
  ) {}

  /** The settings above, on a new connection to `path`. */
  static open(path: string): StatementCache {
    const connection = new BetterSqlite3(path);
    configureSqlite(connection);
    return new StatementCache(connection);
  }

  prepare(sql: string): BetterSqlite3.Statement {
    let statement = this.statements.get(sql);
    if (statement !== undefined) {
      // Most recently used last: the first key is the one to evict.
      this.statements.delete(sql);
    } else {
      statement = this.connection.prepare(sql);
      if (this.statements.size >= this.size) this.statements.delete(this.statements.keys().next().value!);
    }
    this.statements.set(sql, statement);
    return statement;
  }

  close(): void {
    this.connection.close();
  }
}
