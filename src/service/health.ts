import { sql } from 'kysely';
import type { DatabaseKind, StoreDatabase } from '../store/database.js';
import { dialectOf } from '../store/dialect.js';

export type HealthReport =
  | { ok: true; database: DatabaseKind }
  /** unreachable: the database does not answer; disk_full: it answers but cannot take writes. */
  | { ok: false; problem: 'unreachable' | 'disk_full' };

/** Whether this process can serve: the database answers and can take writes. */
export class HealthService {
  constructor(
    private readonly database: StoreDatabase,
    private readonly sqlitePath: string,
  ) {}

  /** Where the database lives, without credentials: for start-up messages. */
  get databaseDescription(): string {
    return this.database.description;
  }

  async check(): Promise<HealthReport> {
    try {
      await sql`select 1`.execute(this.database.db);
    } catch {
      return { ok: false, problem: 'unreachable' };
    }
    const problem = await dialectOf(this.database).storageProblem({ sqlitePath: this.sqlitePath });
    if (problem !== null) return { ok: false, problem };
    return { ok: true, database: this.database.kind };
  }
}
