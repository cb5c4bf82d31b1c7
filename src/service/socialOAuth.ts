import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { type AppConfig, loadConfig, type RefresherSettings } from '../config.js';
import { loadKeyring } from '../crypto/keyring.js';
import { hasUsableAccessToken, type SocialAccount } from '../domain/account.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { ConfigurationError } from '../domain/errors.js';
import { type Logger, silentLogger } from '../domain/logger.js';
import type { ProviderName } from '../domain/providerName.js';
import type { Provider, ProviderHttpOptions } from '../platforms/provider.js';
import { PLATFORM_PUBLISHERS } from '../platforms/publishers.js';
import { createProvider, PROVIDER_NAMES, platform } from '../platforms/registry.js';
import type { PlatformPublisher } from '../publishing/platformPublisher.js';
import { AccountRepository } from '../store/accountRepository.js';
import { ApiKeyRepository } from '../store/apiKeyRepository.js';
import { ConnectSessionRepository } from '../store/connectSessionRepository.js';
import { openDatabase, type StoreDatabase } from '../store/database.js';
import { LedgerRepository } from '../store/ledgerRepository.js';
import { migrateToLatest, migrationStatus } from '../store/migrations.js';
import { NotificationOutboxRepository } from '../store/notificationOutboxRepository.js';
import { PortalSessionRepository } from '../store/portalSessionRepository.js';
import { PublicationRepository } from '../store/publicationRepository.js';
import { AccountLifecycle } from './accountLifecycle.js';
import { AccountService } from './accountService.js';
import { ApiKeys } from './apiKeys.js';
import { checkClockSkew } from './clockSkew.js';
import { ConnectFlow } from './connectFlow.js';
import { HealthService } from './health.js';
import { KeyService } from './keyService.js';
import { LedgerQueries } from './ledgerQueries.js';
import { type DispatchOutcome, NotificationDispatcher } from './notificationDispatcher.js';
import { createOutboundGate } from './outboundGate.js';
import { PlatformRemovals } from './platformRemovals.js';
import { PortalSessions } from './portalSessions.js';
import { MediaStore } from './publications/media.js';
import { MediaLinks } from './publications/mediaLinks.js';
import { PublicationRunner } from './publications/publicationRunner.js';
import { PublicationService } from './publications/publicationService.js';
import { PublicationWorker } from './publications/publicationWorker.js';
import { createPublishingClient, type PublishingClient } from './publications/publishingClient.js';
import { Refresher } from './refresher.js';
import { RefreshJournal } from './refreshJournal.js';
import { createRefreshSchedule } from './refreshSchedule.js';
import { RequiredScopes } from './requiredScopes.js';
import { ServiceError } from './serviceError.js';
import { StatusNotifier } from './statusNotifier.js';
import { registerStore, type StoreAccess } from './storeAccess.js';
import { TokenService } from './tokenService.js';

export interface SocialOAuthOptions {
  /** Defaults to loadConfig(process.env). */
  config?: AppConfig;
  clock?: Clock;
  /**
   * PostgreSQL: a clock that stands in for the server's in due times (see
   * `StoreDatabase.scheduleClock`). Tests that move one manual clock through months pass it here
   * too; unset (always, in production), the server's `now()` decides.
   */
  scheduleClock?: Clock;
  /** The undici connection pool for calls to the platforms (its global one by default). */
  dispatcher?: Dispatcher;
  logger?: Logger;
  /** Run pending migrations on open (default true); false refuses to open a schema that is behind. */
  migrate?: boolean;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Overrides the providers built from config (tests, custom platforms). */
  providers?: Partial<Record<ProviderName, Provider>>;
  /** Issue 13: each platform's publishing client (src/platforms/<name>/publishing.ts); tests inject their own. */
  /** Publishing clients instead of the platforms' own (tests); null = none for that platform. */
  publishers?: Partial<Record<ProviderName, PlatformPublisher | null>>;
}

/** The services a SocialOAuth wires (see the class). */
interface SocialOAuthParts {
  config: AppConfig;
  clock: Clock;
  logger: Logger;
  generatedKeyFile: string | null;
  ownDispatcher: Agent | null;
  tokens: TokenService;
  accounts: AccountService;
  ledger: LedgerQueries;
  lifecycle: AccountLifecycle;
  connect: ConnectFlow;
  removals: PlatformRemovals;
  apiKeys: ApiKeys;
  portalSessions: PortalSessions;
  health: HealthService;
  keys: KeyService;
  publications: PublicationService;
  mediaLinks: MediaLinks;
  requiredScopes: RequiredScopes;
  store: StoreAccess;
}

/**
 * Everything one process needs, wired once. It hands out services only: the database, the cipher,
 * the repositories and the platforms' clients stay inside (tests reach them through `storeOf`, in
 * storeAccess.ts, which the package root does not export). No global state: a test can open
 * several side by side.
 */
export class SocialOAuth {
  readonly config: AppConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Path of a key generated into the data folder on this start, if any. */
  readonly generatedKeyFile: string | null;
  /** ensure/refresh (the exactly-once path), OAuth info, event listeners. */
  readonly tokens: TokenService;
  /** Read, list (never a token), import, counts. */
  readonly accounts: AccountService;
  /** The OAuth ledger's pages. */
  readonly ledger: LedgerQueries;
  /** Connect, reconnect, revoke, delete. */
  readonly lifecycle: AccountLifecycle;
  /** The connect flow (authorize URL, callback). */
  readonly connect: ConnectFlow;
  /** The platforms' removal notices (webhooks): account lookups and the grant check. */
  readonly removals: PlatformRemovals;
  /** The HTTP service's API keys. */
  readonly apiKeys: ApiKeys;
  /** Short-lived links to an owner's status page. */
  readonly portalSessions: PortalSessions;
  /** Database reachability and what it is. */
  readonly health: HealthService;
  /** Token encryption keys: counts per key, rotation. */
  readonly keys: KeyService;
  /** Issue 13: publications (create, read, drive). */
  readonly publications: PublicationService;
  /** Issue 13: the expiring links Instagram fetches a video from (GET /media/:token). */
  readonly mediaLinks: MediaLinks;
  /** The scopes each platform's accounts must hold (`<PROVIDER>_REQUIRED_SCOPES`). */
  readonly requiredScopes: RequiredScopes;
  /** The connection pool to the platforms, when this instance made it (and so closes it). */
  private readonly ownDispatcher: Agent | null;
  private readonly store: StoreAccess;

  private constructor(parts: SocialOAuthParts) {
    this.config = parts.config;
    this.clock = parts.clock;
    this.logger = parts.logger;
    this.generatedKeyFile = parts.generatedKeyFile;
    this.tokens = parts.tokens;
    this.accounts = parts.accounts;
    this.ledger = parts.ledger;
    this.lifecycle = parts.lifecycle;
    this.connect = parts.connect;
    this.removals = parts.removals;
    this.apiKeys = parts.apiKeys;
    this.portalSessions = parts.portalSessions;
    this.health = parts.health;
    this.keys = parts.keys;
    this.publications = parts.publications;
    this.mediaLinks = parts.mediaLinks;
    this.requiredScopes = parts.requiredScopes;
    this.ownDispatcher = parts.ownDispatcher;
    this.store = parts.store;
    registerStore(this, parts.store);
  }

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
      scheduleClock: options.scheduleClock,
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
    // Built first: every platform answer's usage headers feed it (slow down before a 429).
    const outbound = createOutboundGate(config.refresher.outbound);
    const http: ProviderHttpOptions = {
      dispatcher: options.dispatcher ?? ownDispatcher!,
      timeoutMs: config.providerTimeoutMs,
      observeAnswer: (provider, headers) => outbound.observe(provider, headers),
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
      outbound,
      journal: new RefreshJournal(join(config.dataDir, 'refresh-journal'), keyring.cipher),
    });
    // Leases and due times follow the database's clock on PostgreSQL; this process's own clock
    // still decides token expiry, so a large difference is worth a warning.
    await checkClockSkew(database, clock, logger);
    // Tokens an earlier run received but could not store: stored now, before any refresh.
    await tokens.replayJournal();
    // Issue 13: a publishing client for each configured platform (injected ones win: tests). A chunk
    // of many megabytes takes longer than a token call, so uploads get a longer deadline.
    // A platform given null in `options.publishers` publishes nowhere (tests of that refusal).
    const publishers: Partial<Record<ProviderName, PlatformPublisher>> = {};
    const uploadHttp: ProviderHttpOptions = {
      ...http,
      timeoutMs: Math.max(config.providerTimeoutMs, 120_000),
    };
    for (const name of PROVIDER_NAMES) {
      const settings = config.providers[name];
      const given = options.publishers?.[name];
      const createPublisher = PLATFORM_PUBLISHERS[name];
      if (given) publishers[name] = given;
      else if (given === undefined && settings && createPublisher) {
        publishers[name] = createPublisher(
          { baseUrl: settings.baseUrl },
          uploadHttp,
          config.publishing.platforms,
        );
      }
    }
    const repository = new PublicationRepository(database, keyring.cipher);
    const media = new MediaStore(config.publishing.mediaDir);
    const mediaLinks = new MediaLinks(repository, clock, config.http.publicBaseUrl);
    const runner = new PublicationRunner({
      publications: repository,
      accounts,
      tokens,
      publishers,
      media,
      mediaLinks,
      clock,
      logger,
      settings: config.publishing,
      random: options.random,
    });
    const publications = new PublicationService({
      publications: repository,
      accounts,
      runner,
      media,
      publishers,
      clock,
      logger,
      settings: config.publishing,
      instanceId: tokens.instanceId,
    });
    const store: StoreAccess = {
      database,
      cipher: keyring.cipher,
      accounts,
      ledger,
      providers,
      publishing: { repository, runner, mediaLinks, publishers },
    };
    const requiredScopes = new RequiredScopes(config.requiredScopes);
    const lifecycle = new AccountLifecycle({
      accounts,
      ledger,
      providers,
      clock,
      logger,
      // TikTok revokes with an access token: an expired one is refreshed under the lease first.
      liveAccessToken: async (account) => {
        const ensured = await tokens.ensureValidAccessToken(account.id);
        return hasUsableAccessToken(ensured.account, clock.now()) ? ensured.account.accessToken : null;
      },
    });
    return new SocialOAuth({
      config,
      clock,
      logger,
      generatedKeyFile: keyring.generated ? keyring.keyFile : null,
      ownDispatcher,
      tokens,
      accounts: new AccountService(accounts, clock),
      ledger: new LedgerQueries(ledger),
      lifecycle,
      connect: new ConnectFlow({
        requiredScopes,
        sessions: new ConnectSessionRepository(database),
        cipher: keyring.cipher,
        providers,
        lifecycle,
        clock,
        logger,
        publicBaseUrl: config.http.publicBaseUrl,
        allowedReturnOrigins: config.http.allowedReturnOrigins,
        ttlSeconds: config.http.connectSessionTtlSeconds,
      }),
      removals: new PlatformRemovals(lifecycle, logger),
      apiKeys: new ApiKeys(new ApiKeyRepository(database), clock),
      portalSessions: new PortalSessions(
        new PortalSessionRepository(database),
        clock,
        config.http.portalSessionTtlSeconds,
        logger,
      ),
      health: new HealthService(database, config.sqlitePath),
      keys: new KeyService({ accounts, ledger, publications: repository, cipher: keyring.cipher, clock }),
      publications,
      mediaLinks,
      requiredScopes,
      store,
    });
  }

  /** The platforms this instance has an OAuth client for (configured, or given in the options). */
  configuredProviders(): ProviderName[] {
    return PROVIDER_NAMES.filter((name) => this.store.providers[name] !== undefined);
  }

  /** The platforms this instance can publish to. */
  publishingProviders(): ProviderName[] {
    return PROVIDER_NAMES.filter((name) => this.store.publishing.publishers[name] !== undefined);
  }

  /** Issue 13: the platform takes a public URL to fetch the video from, not its bytes (Instagram). */
  publishesFromUrl(provider: ProviderName): boolean {
    return this.store.publishing.runner.fetchesFromUrl(provider);
  }

  /**
   * The seed's get_provider_client_for_account: makes sure the account has a valid token (the
   * exactly-once path), then returns its platform's publishing client.
   */
  async publishingClientFor(accountId: string): Promise<PublishingClient> {
    const refuse = (provider: ProviderName) => {
      const { env } = platform(provider);
      return new ServiceError(
        'provider_not_configured',
        `Publishing to ${provider} is not available: this process has no ${env.clientId}/${env.clientSecret}`,
      );
    };
    // Before the token is ensured: a process that cannot publish there must not refresh for nothing
    // (without the platform's credentials that refresh only fails as a configuration error).
    const stored = await this.accounts.findById(accountId);
    if (stored && !this.store.publishing.publishers[stored.provider]) throw refuse(stored.provider);
    return createPublishingClient(accountId, {
      tokens: this.tokens,
      publications: this.publications,
      now: () => this.clock.now(),
      publisherFor: (account) => {
        const publisher = this.store.publishing.publishers[account.provider];
        if (!publisher) throw refuse(account.provider);
        return publisher;
      },
    });
  }

  /**
   * Required scopes the stored account lacks ([] when none): for authenticate() before a post, the
   * status page and the account API. Such an account must be reconnected with every scope granted.
   */
  missingScopes(account: Pick<SocialAccount, 'provider' | 'scopes'>): string[] {
    return this.requiredScopes.missingScopes(account);
  }

  /** Issue 13: the publication worker over this instance (`serve`, `worker`). */
  createPublicationWorker(): PublicationWorker {
    return new PublicationWorker({
      publications: this.store.publishing.repository,
      runner: this.store.publishing.runner,
      clock: this.clock,
      logger: this.logger,
      settings: this.config.publishing,
      providers: this.publishingProviders(),
      instanceId: this.tokens.instanceId,
      onWake: (listener) => this.publications.onWake(listener),
    });
  }

  /** A background refresher over this instance's database and token service (`worker`, `serve`). */
  createRefresher(overrides: Partial<RefresherSettings> = {}): Refresher {
    return new Refresher({
      accounts: this.store.accounts,
      tokens: this.tokens,
      clock: this.clock,
      logger: this.logger,
      settings: { ...this.config.refresher, ...overrides },
      leaseSeconds: this.config.refresh.leaseSeconds,
    });
  }

  /**
   * The outbox dispatcher that delivers notifications to WEBHOOK_URL (`serve`, `worker`, `start`),
   * or null when no receiver is configured. Notifications are written to the outbox whatever the
   * configuration; whichever process has a dispatcher delivers them.
   */
  createNotificationDispatcher(
    options: {
      fetch?: typeof fetch;
      backoff?: { baseMs: number; maxMs: number };
      /** Rows deleted per statement when pruning delivered notifications. */
      pruneBatchSize?: number;
      onOutcome?: (outcome: DispatchOutcome) => void;
    } = {},
  ): NotificationDispatcher | null {
    const { webhookUrl, webhookSecret } = this.config.http;
    if (webhookUrl === null || webhookSecret === null) return null;
    const timeoutMs = 10_000;
    return new NotificationDispatcher({
      outbox: new NotificationOutboxRepository(this.store.database),
      notifier: new StatusNotifier({
        url: webhookUrl,
        secret: webhookSecret,
        clock: this.clock,
        fetch: options.fetch,
        timeoutMs,
      }),
      clock: this.clock,
      logger: this.logger,
      maxAttempts: this.config.http.webhookMaxAttempts,
      backoff: options.backoff ?? { baseMs: 2_000, maxMs: this.config.http.webhookRetryMaxMs },
      pollMs: this.config.http.webhookPollMs,
      // One attempt (connect to answer) fits in a claim, with room for the outcome's write.
      claimMs: timeoutMs + 20_000,
      expiringNoticeMs: this.config.http.webhookExpiringNoticeMs,
      deliveredRetentionMs: this.config.http.webhookDeliveredRetentionMs,
      pruneBatchSize: options.pruneBatchSize,
      onOutcome: options.onOutcome,
    });
  }

  async close(): Promise<void> {
    // Platform calls still on the wire finish first, then the saves they lead to, then the database:
    // a TikTok answer whose tokens were not stored would have spent the refresh token for nothing.
    await this.closeDispatcher();
    await this.store.accounts.drain();
    await this.store.database.close();
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
