import { loadConfig } from '../config.js';
import { KeyringError, TokenDecryptionError } from '../crypto/tokenCipher.js';
import { AccountNotFound, ConfigurationError } from '../domain/errors.js';
import { isDatabaseUnavailable, MigrationFailed } from '../service/databaseErrors.js';
import { createLogger } from '../service/logging.js';
import { SocialOAuth } from '../service/socialOAuth.js';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (the refresh failed, the token is unavailable). */
  failed: 1,
  /** Bad usage or bad input (commander uses it too). */
  usage: 2,
  /** The account must be re-authorized by its user. */
  needsReauth: 3,
  /** Configuration is wrong or missing (EX_CONFIG). */
  config: 78,
} as const;

/** An error the CLI reports as one clear line and an exit code, never a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export async function withApp<T>(
  work: (app: SocialOAuth) => Promise<T>,
  options: { migrate?: boolean } = {},
): Promise<T> {
  const config = loadConfig();
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', destination: 2 });
  // The embedded default migrates itself (one user, one file). On PostgreSQL only `serve` and
  // `worker` migrate: other commands refuse a schema that is behind rather than change a shared
  // database as a side effect (or silently undo a `migrate down`).
  const app = await SocialOAuth.open({
    config,
    logger,
    migrate: options.migrate ?? config.databaseUrl === null,
  });
  if (app.generatedKeyFile) {
    process.stderr.write(
      `No TOKEN_ENCRYPTION_KEYS set: generated a token encryption key at ${app.generatedKeyFile} (mode 0600). ` +
        'Back it up: tokens cannot be decrypted without it.\n',
    );
  }
  try {
    return await work(app);
  } finally {
    await app.close();
  }
}

/** Turns any error into a message and exit code. Unknown errors keep their message, never a stack. */
export function reportError(error: unknown): number {
  const say = (message: string) => process.stderr.write(`social-oauth: ${message}\n`);
  if (error instanceof CliError) {
    say(error.message);
    return error.exitCode;
  }
  if (error instanceof ConfigurationError || error instanceof KeyringError) {
    say(error.message);
    return EXIT.config;
  }
  if (error instanceof AccountNotFound) {
    say(error.message);
    return EXIT.usage;
  }
  if (error instanceof TokenDecryptionError) {
    say(`${error.message}. Is TOKEN_ENCRYPTION_KEYS missing the key these tokens were encrypted with?`);
    return EXIT.config;
  }
  if (error instanceof MigrationFailed) {
    say(error.message);
    return EXIT.failed;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  // 3D000: no such database; 28P01: wrong password.
  if (isDatabaseUnavailable(error) || code === '3D000' || code === '28P01') {
    say(`cannot use the database (${code ?? 'connection lost'}): check DATABASE_URL and the server`);
    return EXIT.config;
  }
  say(error instanceof Error ? error.message : String(error));
  return EXIT.failed;
}
