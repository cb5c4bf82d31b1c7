import type BetterSqlite3 from 'better-sqlite3';

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
