import { type AppConfig, loadConfig } from '../../src/config.js';
import type { Clock } from '../../src/domain/clock.js';
import { SocialOAuth, type SocialOAuthOptions } from '../../src/service/socialOAuth.js';
import type { TestDatabase } from './databases.js';
import { TEST_KEYS } from './keys.js';

/** Environment for a test process pointed at one test database (and, optionally, the simulator). */
export function testEnv(
  database: TestDatabase,
  extra: Record<string, string | undefined> = {},
): NodeJS.ProcessEnv {
  return {
    DATA_DIR: database.dataDir,
    DATABASE_URL: database.databaseUrl,
    TOKEN_ENCRYPTION_KEYS: TEST_KEYS,
    REFRESH_BACKOFF_BASE_MS: '5',
    REFRESH_BACKOFF_MAX_MS: '50',
    PROVIDER_TIMEOUT_MS: '2000',
    ...extra,
  };
}

export function testConfig(
  database: TestDatabase,
  extra: Record<string, string | undefined> = {},
): AppConfig {
  return loadConfig(testEnv(database, extra));
}

export async function openTestApp(
  database: TestDatabase,
  options: Omit<SocialOAuthOptions, 'config'> & {
    env?: Record<string, string | undefined>;
    clock?: Clock;
  } = {},
): Promise<SocialOAuth> {
  const { env, ...rest } = options;
  return SocialOAuth.open({ ...rest, config: testConfig(database, env) });
}
