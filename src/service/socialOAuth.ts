import { Agent, type Dispatcher } from 'undici';
import { type AppConfig, loadConfig, type RefresherSettings } from '../config.js';
import { loadKeyring } from '../crypto/keyring.js';
import type { TokenCipher } from '../crypto/tokenCipher.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { ConfigurationError } from '../domain/errors.js';
import { type Logger, silentLogger } from '../domain/logger.js';
import { PROVIDER_NAMES, type ProviderName } from '../domain/providerName.js';
import type { Provider, ProviderHttpOptions } from '../providers/provider.js';
import { createProvider } from '../providers/registry.js';
import { AccountRepository } from '../store/accountRepository.js';
import { openDatabase, type StoreDatabase } from '../store/database.js';
import { LedgerRepository } from '../store/ledgerRepository.js';
import { migrateToLatest, migrationStatus } from '../store/migrations.js';
import { createOutboundGate } from './outboundGate.js';
import { Refresher } from './refresher.js';
import { createRefreshSchedule } from './refreshSchedule.js';
import { TokenService } from './tokenService.js';

export interface SocialOAuthOptions {
  /** Defaults to loadConfig(process.env). */
  config?: AppConfig;
  clock?: Clock;
  /** The undici connection pool for calls to the platforms (its global one by default). */
  dispatcher?: Dispatcher;
  logger?: Logger;
  /** Run pending migrations on open (default true); false refuses to open a schema that is behind. */
  migrate?: boolean;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Overrides the providers built from config (tests, custom platforms). */
  providers?: Partial<Record<ProviderName, Provider>>;
}

/**
 * Everything one process needs, wired once: database, cipher, repositories, providers and the
 * token service. No global state: a test can open several side by side.
 */
export class SocialOAuth {
  private constructor(
    readonly config: AppConfig,
    readonly database: StoreDatabase,
    readonly cipher: TokenCipher,
    readonly accounts: AccountRepository,
    readonly ledger: LedgerRepository,
    readonly providers: Partial<Record<ProviderName, Provider>>,
    readonly tokens: TokenService,
    readonly clock: Clock,
    readonly logger: Logger,
    /** Path of a key generated into the data folder on this start, if any. */
    readonly generatedKeyFile: string | null,
    /** The connection pool to the platforms, when this instance made it (and so closes it). */
    private readonly ownDispatcher: Agent | null,
  ) {}

  static async open(options: SocialOAuthOptions = {}): Promise<SocialOAuth> {
    const config = options.config ?? loadConfig();
    const logger = options.logger ?? silentLogger;
    const clock = options.clock ?? systemClock;
    const keyring = loadKeyring({
      keys: config.tokenEncryptionKeys,
      dataDir: config.dataDir,
      production: config.production,
      mayGenerate: config.databaseUrl === null,
    });
    const database = openDatabase({
      databaseUrl: config.databaseUrl,
      sqlitePath: config.sqlitePath,
      poolSize: config.refresher.databasePoolSize,
      logger,
    });
    try {
      if (options.migrate ?? true) await migrateToLatest(database);
      else await requireCurrentSchema(database);
    } catch (error) {
      await database.close();
      throw error;
    }
    // Kept-alive connections to each platform, shared by every provider of this instance.
    const ownDispatcher = options.dispatcher ? null : new Agent();
    const http: ProviderHttpOptions = {
      dispatcher: options.dispatcher ?? ownDispatcher!,
      timeoutMs: config.providerTimeoutMs,
    };
    const providers: Partial<Record<ProviderName, Provider>> = { ...options.providers };
    for (const name of PROVIDER_NAMES) {
      const settings = config.providers[name];
      if (!providers[name] && settings) providers[name] = createProvider(name, settings, http);
    }
    // Every token write also plans the account's next keep-alive refresh (docs/REFRESH-POLICY.md).
    const schedule = createRefreshSchedule(config.refresher.keepAlive, { random: options.random });
    const accounts = new AccountRepository(database, keyring.cipher, schedule);
    const ledger = new LedgerRepository(database);
    const tokens = new TokenService({
      accounts,
      ledger,
      providers,
      clock,
      settings: config.refresh,
      logger,
      sleep: options.sleep,
      random: options.random,
      outbound: createOutboundGate(config.refresher.outbound),
    });
    return new SocialOAuth(
      config,
      database,
      keyring.cipher,
      accounts,
      ledger,
      providers,
      tokens,
      clock,
      logger,
      keyring.generated ? keyring.keyFile : null,
      ownDispatcher,
    );
  }

  /** A background refresher over this instance's database and token service (`worker`, `serve`). */
  createRefresher(overrides: Partial<RefresherSettings> = {}): Refresher {
    return new Refresher({
      accounts: this.accounts,
      tokens: this.tokens,
      clock: this.clock,
      logger: this.logger,
      settings: { ...this.config.refresher, ...overrides },
      leaseSeconds: this.config.refresh.leaseSeconds,
    });
  }

  async close(): Promise<void> {
    // Platform calls still on the wire finish first, then the saves they lead to, then the database:
    // a TikTok answer whose tokens were not stored would have spent the refresh token for nothing.
    await this.closeDispatcher();
    await this.accounts.drain();
    await this.database.close();
  }

  /** Lets calls still on the wire finish for a moment, then cuts them. */
  private async closeDispatcher(): Promise<void> {
    const dispatcher = this.ownDispatcher;
    if (dispatcher === null) return;
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => resolve(dispatcher.destroy()), 2_000);
    });
    await Promise.race([dispatcher.close(), cut]);
    clearTimeout(timer);
  }
}

/** Without migrating, a schema that is behind is a configuration error, not a crash later on. */
async function requireCurrentSchema(database: StoreDatabase): Promise<void> {
  const pending = (await migrationStatus(database)).filter((m) => m.executedAt === null).map((m) => m.name);
  if (pending.length > 0) {
    throw new ConfigurationError(
      `the database schema is behind (pending: ${pending.join(', ')}): run \`social-oauth migrate up\``,
    );
  }
}
