/**
 * The store's failures as callers above the services name them (the CLI's exit codes, the HTTP
 * error reply): whether the database could not be reached, and a migration that failed.
 */
export { isDatabaseUnavailable } from '../store/database.js';
export { MigrationFailed } from '../store/migrations.js';
