import type { AppConfig } from '../config.js';
import { openDatabase, type StoreDatabase } from '../store/database.js';
import {
  lastExecutedMigration,
  type MigrationState,
  migrateDown,
  migrateToLatest,
  migrationStatus,
  TOKENS_MIGRATION,
} from '../store/migrations.js';

export type { MigrationState };
/** Going down past this one deletes every stored token. */
export { TOKENS_MIGRATION };

/**
 * The schema's migrations, on a database of their own: `migrate` runs where SocialOAuth.open
 * would refuse (a schema that is behind) or would migrate as a side effect.
 */
export class MigrationService {
  private constructor(private readonly store: StoreDatabase) {}

  static open(config: Pick<AppConfig, 'databaseUrl' | 'sqlitePath'>): MigrationService {
    return new MigrationService(
      openDatabase({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath }),
    );
  }

  /** Applies every pending migration; returns the names applied. */
  async up(): Promise<string[]> {
    const result = await migrateToLatest(this.store);
    return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  /** Undoes the last applied migration. */
  async down(): Promise<void> {
    await migrateDown(this.store);
  }

  /** The migration `down` would undo next, or null when none has run. */
  lastApplied(): Promise<string | null> {
    return lastExecutedMigration(this.store);
  }

  status(): Promise<MigrationState[]> {
    return migrationStatus(this.store);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
