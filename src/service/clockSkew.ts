import type { Clock } from '../domain/clock.js';
import type { Logger } from '../domain/logger.js';
import type { StoreDatabase } from '../store/database.js';
import { dialectOf } from '../store/dialect.js';

/**
 * Past this, a process's clock is said to differ from the database's. Leases and due times follow
 * the database's clock on PostgreSQL, but each process still judges token expiry by its own: a
 * process running minutes ahead refreshes early, one running behind hands out expired tokens.
 */
export const CLOCK_SKEW_WARNING_MS = 5_000;

/**
 * This process's clock minus the database's, in ms (positive: ahead), measured against the middle
 * of the round trip. On SQLite the database's clock is the machine's, so only an injected clock
 * can differ from it.
 */
export async function measureClockSkew(database: StoreDatabase, clock: Clock): Promise<number> {
  const query = dialectOf(database).clockNow();
  const before = clock.now();
  const { rows } = await query.execute(database.db);
  const after = clock.now();
  return Math.round((before + after) / 2 - Number(rows[0]!.now));
}

/** Measures the skew at start and warns past CLOCK_SKEW_WARNING_MS; never stops the process. */
export async function checkClockSkew(
  database: StoreDatabase,
  clock: Clock,
  logger: Logger,
): Promise<number | null> {
  let skewMs: number;
  try {
    skewMs = await measureClockSkew(database, clock);
  } catch (error) {
    logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      'could not read the database clock',
    );
    return null;
  }
  if (Math.abs(skewMs) > CLOCK_SKEW_WARNING_MS) {
    logger.warn(
      { skewMs, database: database.kind },
      `this process's clock is ${Math.round(Math.abs(skewMs) / 1000)} s ${skewMs > 0 ? 'ahead of' : 'behind'} the database's: token expiry is judged by this clock, so sync it (NTP)`,
    );
  }
  return skewMs;
}
