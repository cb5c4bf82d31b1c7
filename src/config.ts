import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigurationError } from './domain/errors.js';
import type { ProviderName } from './domain/providerName.js';
import type { ProviderSettings } from './platforms/provider.js';
import {
  loadPlatformPublishingSettings,
  type PlatformPublishingSettings,
} from './platforms/publishingSettings.js';
import { PROVIDER_DEFAULT_SCOPES, platforms } from './platforms/registry.js';

export interface RefreshSettings {
  /** Refresh when the access token expires within this many seconds. */
  thresholdSeconds: number;
  /** Calls to the platform per refresh, the first included. */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long a refresher may hold an account before others may take over (crash safety). */
  leaseSeconds: number;
  /** How long a caller waits for another process's refresh before giving up. */
  waitTimeoutMs: number;
}

export interface AppConfig {
  production: boolean;
  dataDir: string;
  /** null = the embedded SQLite default in dataDir. */
  databaseUrl: string | null;
  sqlitePath: string;
  tokenEncryptionKeys: string | undefined;
  providerTimeoutMs: number;
  refresh: RefreshSettings;
  /** Only the platforms whose client id and secret are set. */
  providers: Partial<Record<ProviderName, ProviderSettings>>;
  host: string;
  port: number;
  logLevel: string;
  /** The HTTP service (issue 3): links it hands out, who it notifies, its limits. */
  http: HttpSettings;
  /** The background refresher (issue 4). */
  refresher: RefresherSettings;
  /**
   * Scopes an account needs on each platform (`<PROVIDER>_REQUIRED_SCOPES`, comma- or
   * space-separated; default: the scopes the platform's client asks for). A connect whose grant
   * lacks one is refused; stored accounts that lack one are reported.
   */
  requiredScopes: Record<ProviderName, string[]>;
  /** Publications (issue 13). */
  publishing: PublishingSettings;
}

/** Publications (issue 13): where received media lives, limits, and the publication worker. */
export interface PublishingSettings {
  /** MEDIA_DIR (default DATA_DIR/media): shared storage when workers run on several hosts. */
  mediaDir: string;
  /** What the platforms' publishing clients read (TIKTOK_CHUNK_BYTES, TIKTOK_DEFAULT_PRIVACY, …). */
  platforms: PlatformPublishingSettings;
  /** PUBLISH_MAX_BYTES (default 4 GiB, TikTok's maximum): larger uploads are refused with 413. */
  maxBytes: number;
  /** Whether `serve` runs the publication worker in its process (PUBLISH_WORKER_ENABLED); `worker` always does. */
  workerEnabled: boolean;
  /** How long a worker holds a publication before another may take it over (renewed while it works). */
  leaseSeconds: number;
  /** Publications worked at the same time per platform by one process. */
  concurrency: number;
  /** Publications started (or resumed) per minute per platform by one process (0 = no limit). */
  startsPerMinute: number;
  /** How often a publication in `processing` is looked at. */
  pollIntervalMs: number;
  /** How often an idle worker looks for due publications. */
  intervalMs: number;
  /** Tries after transient failures before a publication fails for good. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** The background refresher and the limits on calls to the platforms (issue 4). */
export interface RefresherSettings {
  /** Whether `serve` runs the refresher in its process (REFRESHER_ENABLED); `worker` always does. */
  enabled: boolean;
  /** Accounts refreshed at the same time by one worker process. */
  concurrency: number;
  /** Accounts claimed per query. */
  batchSize: number;
  /** How often an idle worker looks for due accounts. */
  intervalMs: number;
  /** How long a claimed account stays hidden from other workers (a dead worker's claims lapse). */
  claimSeconds: number;
  /** The keep-alive policy (see docs/REFRESH-POLICY.md). */
  keepAlive: {
    marginSeconds: number;
    marginFraction: number;
    jitterSeconds: number;
    unknownLifetimeIntervalSeconds: number;
    retryBaseSeconds: number;
    retryMaxSeconds: number;
  };
  /** Per platform and per process: requests per second (0 = none) and calls in flight (0 = none). */
  outbound: Record<ProviderName, { ratePerSecond: number; maxConcurrent: number }>;
  /** PostgreSQL connections per process (DATABASE_POOL_SIZE): more refreshes in flight may want more. */
  databasePoolSize: number;
}

export interface HttpSettings {
  /** Origin (and optional path prefix) under which browsers reach this service: links in API answers. */
  publicBaseUrl: string;
  /** Origins a connect flow may send the browser back to; the public base URL's origin is always allowed. */
  allowedReturnOrigins: string[];
  /** Where account status changes are POSTed (null = nowhere), and the HMAC-SHA256 secret that signs them. */
  webhookUrl: string | null;
  webhookSecret: string | null;
  /** Attempts per notification, across every process and restart. */
  webhookMaxAttempts: number;
  /** The longest wait between two attempts (the backoff doubles from 2 s up to this). */
  webhookRetryMaxMs: number;
  /** How often an idle process looks for notifications written by others (the outbox). */
  webhookPollMs: number;
  /** Notify `account.expiring` this long before a grant's known end; 0 = never. */
  webhookExpiringNoticeMs: number;
  /** Delivered notifications are deleted from the outbox this long after delivery. */
  webhookDeliveredRetentionMs: number;
  connectSessionTtlSeconds: number;
  portalSessionTtlSeconds: number;
  bodyLimitBytes: number;
  /** How long a stopping server waits for requests in flight before closing anyway. */
  shutdownTimeoutMs: number;
}

const integer = (name: string, fallback: number, min = 0) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === '') return fallback;
      const parsed = Number(value);
      if (!Number.isInteger(parsed) || parsed < min) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number >= ${min}, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    });

function optionalString(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function validUrl(name: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return value.replace(/\/+$/, '');
  } catch {
    throw new ConfigurationError(`${name} must be an http(s) URL, got "${value}".`);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const numbers = z
    .object({
      PROVIDER_TIMEOUT_MS: integer('PROVIDER_TIMEOUT_MS', 10_000, 1),
      REFRESH_THRESHOLD_SECONDS: integer('REFRESH_THRESHOLD_SECONDS', 300),
      REFRESH_MAX_ATTEMPTS: integer('REFRESH_MAX_ATTEMPTS', 4, 1),
      REFRESH_BACKOFF_BASE_MS: integer('REFRESH_BACKOFF_BASE_MS', 250, 1),
      REFRESH_BACKOFF_MAX_MS: integer('REFRESH_BACKOFF_MAX_MS', 10_000, 1),
      REFRESH_LEASE_SECONDS: integer('REFRESH_LEASE_SECONDS', 60, 1),
      REFRESH_WAIT_TIMEOUT_MS: integer('REFRESH_WAIT_TIMEOUT_MS', 90_000, 1),
      PORT: integer('PORT', 8080),
      WEBHOOK_MAX_ATTEMPTS: integer('WEBHOOK_MAX_ATTEMPTS', 12, 1),
      WEBHOOK_RETRY_MAX_SECONDS: integer('WEBHOOK_RETRY_MAX_SECONDS', 3600, 1),
      WEBHOOK_POLL_SECONDS: integer('WEBHOOK_POLL_SECONDS', 5, 1),
      WEBHOOK_EXPIRING_NOTICE_SECONDS: integer('WEBHOOK_EXPIRING_NOTICE_SECONDS', 86_400),
      WEBHOOK_DELIVERED_RETENTION_SECONDS: integer('WEBHOOK_DELIVERED_RETENTION_SECONDS', 7 * 86_400, 1),
      CONNECT_SESSION_TTL_SECONDS: integer('CONNECT_SESSION_TTL_SECONDS', 600, 1),
      PORTAL_SESSION_TTL_SECONDS: integer('PORTAL_SESSION_TTL_SECONDS', 1800, 1),
      HTTP_BODY_LIMIT_BYTES: integer('HTTP_BODY_LIMIT_BYTES', 65_536, 1024),
      SHUTDOWN_TIMEOUT_MS: integer('SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    })
    .safeParse(env);
  if (!numbers.success) {
    throw new ConfigurationError(numbers.error.issues.map((issue) => issue.message).join('; '));
  }
  const n = numbers.data;
  // The lease must outlast a refresh call: a holder whose lease lapses mid-call races the next
  // holder with the same (single-use, on TikTok) refresh token.
  if (n.REFRESH_LEASE_SECONDS * 1000 < 2 * n.PROVIDER_TIMEOUT_MS + 5000) {
    throw new ConfigurationError(
      `REFRESH_LEASE_SECONDS (${n.REFRESH_LEASE_SECONDS}) must be at least 2 × PROVIDER_TIMEOUT_MS + 5 s ` +
        `(${Math.ceil((2 * n.PROVIDER_TIMEOUT_MS + 5000) / 1000)} s with PROVIDER_TIMEOUT_MS=${n.PROVIDER_TIMEOUT_MS}).`,
    );
  }
  if (n.PORT > 65535) throw new ConfigurationError(`PORT must be at most 65535, got ${n.PORT}.`);

  const providers: AppConfig['providers'] = {};
  // Each platform's variable names come from its folder (src/platforms/<name>/index.ts).
  for (const { name, env: names } of platforms()) {
    const clientId = optionalString(env, names.clientId);
    const clientSecret = optionalString(env, names.clientSecret);
    if ((clientId === undefined) !== (clientSecret === undefined)) {
      throw new ConfigurationError(`${names.clientId} and ${names.clientSecret} must be set together.`);
    }
    if (clientId === undefined || clientSecret === undefined) continue;
    providers[name] = {
      clientId,
      clientSecret,
      redirectUri: validUrl(names.redirectUri, optionalString(env, names.redirectUri)),
      baseUrl: validUrl(names.baseUrl, optionalString(env, names.baseUrl)),
      ...apiVersion(env, names.apiVersion),
    };
  }

  const dataDir = resolve(optionalString(env, 'DATA_DIR') ?? 'data');
  const databaseUrl = optionalString(env, 'DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigurationError(
      'DATABASE_URL must start with postgres:// (unset it for the embedded SQLite default).',
    );
  }
  const host = optionalString(env, 'HOST') ?? '127.0.0.1';
  const config: AppConfig = {
    production: env.NODE_ENV === 'production',
    dataDir,
    databaseUrl,
    sqlitePath: resolve(dataDir, 'social-oauth.db'),
    tokenEncryptionKeys: optionalString(env, 'TOKEN_ENCRYPTION_KEYS'),
    providerTimeoutMs: n.PROVIDER_TIMEOUT_MS,
    refresh: {
      thresholdSeconds: n.REFRESH_THRESHOLD_SECONDS,
      maxAttempts: n.REFRESH_MAX_ATTEMPTS,
      backoffBaseMs: n.REFRESH_BACKOFF_BASE_MS,
      backoffMaxMs: n.REFRESH_BACKOFF_MAX_MS,
      leaseSeconds: n.REFRESH_LEASE_SECONDS,
      waitTimeoutMs: n.REFRESH_WAIT_TIMEOUT_MS,
    },
    providers,
    host,
    port: n.PORT,
    logLevel: optionalString(env, 'LOG_LEVEL') ?? 'info',
    http: loadHttpSettings(env, host, n),
    refresher: loadRefresherSettings(env),
    requiredScopes: loadRequiredScopes(env),
    publishing: loadPublishingSettings(env, dataDir),
  };
  // A PUBLIC_BASE_URL left to its default (http://HOST:PORT) matters only to `serve`: buildApp checks it.
  requireSecureTransportInProduction(config, {
    publicBaseUrl: optionalString(env, 'PUBLIC_BASE_URL') !== undefined,
  });
  return config;
}

/** 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine (the simulator, a local proxy). */
function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

/**
 * Issue 10: in production (NODE_ENV=production) nothing secret travels in clear, whatever the
 * command. Checked here, when the configuration is read, so `worker`, `refresh` and `token` refuse
 * too: they send the client secret and refresh tokens to <PROVIDER>_BASE_URL, and only `serve`
 * used to check (and only the redirect URIs and PUBLIC_BASE_URL).
 * - <PROVIDER>_BASE_URL (client secrets, codes, tokens) and WEBHOOK_URL: https, or a loopback
 *   address (the simulator in tests and the sandbox, a local egress proxy).
 * - <PROVIDER>_REDIRECT_URI and PUBLIC_BASE_URL (codes, connect states and portal links in browsers
 *   elsewhere): https, as before (RFC 9700 §2.6 / §4.1; a loopback address is no use to a browser
 *   on another machine).
 * `serve` (buildApp) checks PUBLIC_BASE_URL even when it was left to its http://HOST:PORT default;
 * other commands hand out no links and check it only when it is set.
 */
export function requireSecureTransportInProduction(
  config: AppConfig,
  check: { publicBaseUrl: boolean } = { publicBaseUrl: true },
): void {
  if (!config.production) return;
  const https = (url: string) => url.startsWith('https://');
  for (const { name, env: names } of platforms()) {
    const settings = config.providers[name];
    if (!settings) continue;
    if (settings.baseUrl && !https(settings.baseUrl) && !isLoopback(settings.baseUrl)) {
      throw new ConfigurationError(
        `${names.baseUrl} must be https in production (it receives the client secret and tokens); http is allowed only for a loopback address.`,
      );
    }
    if (settings.redirectUri && !https(settings.redirectUri)) {
      throw new ConfigurationError(`${names.redirectUri} must be https in production.`);
    }
  }
  if (check.publicBaseUrl && !https(config.http.publicBaseUrl)) {
    throw new ConfigurationError('PUBLIC_BASE_URL must be https in production.');
  }
  const webhook = config.http.webhookUrl;
  if (webhook !== null && !https(webhook) && !isLoopback(webhook)) {
    throw new ConfigurationError(
      'WEBHOOK_URL must be https in production; http is allowed only for a loopback address.',
    );
  }
}

function loadPublishingSettings(env: NodeJS.ProcessEnv, dataDir: string): PublishingSettings {
  const parsed = z
    .object({
      PUBLISH_MAX_BYTES: integer('PUBLISH_MAX_BYTES', 4 * 1024 ** 3, 1),
      PUBLISH_LEASE_SECONDS: integer('PUBLISH_LEASE_SECONDS', 60, 1),
      PUBLISH_CONCURRENCY: integer('PUBLISH_CONCURRENCY', 4, 1),
      PUBLISH_STARTS_PER_MINUTE: integer('PUBLISH_STARTS_PER_MINUTE', 30),
      PUBLISH_POLL_INTERVAL_MS: integer('PUBLISH_POLL_INTERVAL_MS', 15_000, 1),
      PUBLISH_INTERVAL_MS: integer('PUBLISH_INTERVAL_MS', 2_000, 1),
      PUBLISH_MAX_ATTEMPTS: integer('PUBLISH_MAX_ATTEMPTS', 8, 1),
      PUBLISH_RETRY_BASE_MS: integer('PUBLISH_RETRY_BASE_MS', 5_000, 1),
      PUBLISH_RETRY_MAX_MS: integer('PUBLISH_RETRY_MAX_MS', 10 * 60_000, 1),
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigurationError(parsed.error.issues.map((issue) => issue.message).join('; '));
  }
  const n = parsed.data;
  const enabled = (optionalString(env, 'PUBLISH_WORKER_ENABLED') ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(enabled)) {
    throw new ConfigurationError(`PUBLISH_WORKER_ENABLED must be true or false, got "${enabled}".`);
  }
  return {
    mediaDir: resolve(optionalString(env, 'MEDIA_DIR') ?? resolve(dataDir, 'media')),
    platforms: loadPlatformPublishingSettings(env),
    maxBytes: n.PUBLISH_MAX_BYTES,
    workerEnabled: ['true', '1', 'yes'].includes(enabled),
    leaseSeconds: n.PUBLISH_LEASE_SECONDS,
    concurrency: n.PUBLISH_CONCURRENCY,
    startsPerMinute: n.PUBLISH_STARTS_PER_MINUTE,
    pollIntervalMs: n.PUBLISH_POLL_INTERVAL_MS,
    intervalMs: n.PUBLISH_INTERVAL_MS,
    maxAttempts: n.PUBLISH_MAX_ATTEMPTS,
    retryBaseMs: n.PUBLISH_RETRY_BASE_MS,
    retryMaxMs: n.PUBLISH_RETRY_MAX_MS,
  };
}

/** `TIKTOK_REQUIRED_SCOPES=user.info.basic,video.publish`; unset or empty = the platform's default. */
function loadRequiredScopes(env: NodeJS.ProcessEnv): Record<ProviderName, string[]> {
  return Object.fromEntries(
    platforms().map(({ name, env: names }) => {
      const value = optionalString(env, names.requiredScopes);
      const scopes =
        value === undefined
          ? [...(PROVIDER_DEFAULT_SCOPES[name] ?? [])]
          : [...new Set(value.split(/[\s,]+/).filter((scope) => scope !== ''))];
      return [name, scopes];
    }),
  ) as Record<ProviderName, string[]>;
}

function loadHttpSettings(
  env: NodeJS.ProcessEnv,
  host: string,
  n: {
    PORT: number;
    WEBHOOK_MAX_ATTEMPTS: number;
    WEBHOOK_RETRY_MAX_SECONDS: number;
    WEBHOOK_POLL_SECONDS: number;
    WEBHOOK_EXPIRING_NOTICE_SECONDS: number;
    WEBHOOK_DELIVERED_RETENTION_SECONDS: number;
    CONNECT_SESSION_TTL_SECONDS: number;
    PORTAL_SESSION_TTL_SECONDS: number;
    HTTP_BODY_LIMIT_BYTES: number;
    SHUTDOWN_TIMEOUT_MS: number;
  },
): HttpSettings {
  // A wildcard bind address is not somewhere a browser can go; localhost is, on this machine.
  const linkHost =
    host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const publicBaseUrl =
    validUrl('PUBLIC_BASE_URL', optionalString(env, 'PUBLIC_BASE_URL')) ?? `http://${linkHost}:${n.PORT}`;
  const allowedReturnOrigins = (optionalString(env, 'ALLOWED_RETURN_ORIGINS') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const url = validUrl('ALLOWED_RETURN_ORIGINS', entry)!;
      return new URL(url).origin;
    });
  const webhookUrl = validUrl('WEBHOOK_URL', optionalString(env, 'WEBHOOK_URL'));
  const webhookSecret = optionalString(env, 'WEBHOOK_SECRET') ?? null;
  if (webhookUrl !== null && webhookSecret === null) {
    throw new ConfigurationError('WEBHOOK_URL needs WEBHOOK_SECRET: notifications are always signed.');
  }
  return {
    publicBaseUrl,
    allowedReturnOrigins: [...new Set([new URL(publicBaseUrl).origin, ...allowedReturnOrigins])],
    webhookUrl,
    webhookSecret,
    webhookMaxAttempts: n.WEBHOOK_MAX_ATTEMPTS,
    webhookRetryMaxMs: n.WEBHOOK_RETRY_MAX_SECONDS * 1000,
    webhookPollMs: n.WEBHOOK_POLL_SECONDS * 1000,
    webhookExpiringNoticeMs: n.WEBHOOK_EXPIRING_NOTICE_SECONDS * 1000,
    webhookDeliveredRetentionMs: n.WEBHOOK_DELIVERED_RETENTION_SECONDS * 1000,
    connectSessionTtlSeconds: n.CONNECT_SESSION_TTL_SECONDS,
    portalSessionTtlSeconds: n.PORTAL_SESSION_TTL_SECONDS,
    bodyLimitBytes: n.HTTP_BODY_LIMIT_BYTES,
    shutdownTimeoutMs: n.SHUTDOWN_TIMEOUT_MS,
  };
}

function apiVersion(
  env: NodeJS.ProcessEnv,
  spec: { name: string; fallback: string; pattern: RegExp; example: string } | undefined,
): { apiVersion?: string } {
  if (spec === undefined) return {};
  const value = optionalString(env, spec.name);
  if (value === undefined) return { apiVersion: spec.fallback };
  if (!spec.pattern.test(value)) {
    throw new ConfigurationError(`${spec.name} must look like ${spec.example}, got "${value}".`);
  }
  return { apiVersion: value };
}

function loadRefresherSettings(env: NodeJS.ProcessEnv): RefresherSettings {
  const rateNames = Object.fromEntries(
    platforms().map(({ env: names }) => [names.rateLimitRps, integer(names.rateLimitRps, 50)]),
  );
  const parsed = z
    .object({
      WORKER_CONCURRENCY: integer('WORKER_CONCURRENCY', 16, 1),
      REFRESHER_BATCH_SIZE: integer('REFRESHER_BATCH_SIZE', 100, 1),
      REFRESHER_INTERVAL_SECONDS: integer('REFRESHER_INTERVAL_SECONDS', 60, 1),
      REFRESHER_CLAIM_SECONDS: integer('REFRESHER_CLAIM_SECONDS', 300, 1),
      OUTBOUND_CONCURRENCY: integer('OUTBOUND_CONCURRENCY', 100),
      DATABASE_POOL_SIZE: integer('DATABASE_POOL_SIZE', 10, 1),
      KEEPALIVE_MARGIN_SECONDS: integer('KEEPALIVE_MARGIN_SECONDS', 3 * 86_400),
      KEEPALIVE_JITTER_SECONDS: integer('KEEPALIVE_JITTER_SECONDS', 6 * 3_600),
      KEEPALIVE_RETRY_MAX_SECONDS: integer('KEEPALIVE_RETRY_MAX_SECONDS', 6 * 3_600, 1),
      ...rateNames,
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigurationError(parsed.error.issues.map((issue) => issue.message).join('; '));
  }
  const n = parsed.data as Record<string, number>;
  const enabled = (optionalString(env, 'REFRESHER_ENABLED') ?? 'true').toLowerCase();
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(enabled)) {
    throw new ConfigurationError(`REFRESHER_ENABLED must be true or false, got "${enabled}".`);
  }
  return {
    enabled: ['true', '1', 'yes'].includes(enabled),
    concurrency: n.WORKER_CONCURRENCY!,
    batchSize: n.REFRESHER_BATCH_SIZE!,
    intervalMs: n.REFRESHER_INTERVAL_SECONDS! * 1000,
    claimSeconds: n.REFRESHER_CLAIM_SECONDS!,
    databasePoolSize: n.DATABASE_POOL_SIZE!,
    keepAlive: {
      marginSeconds: n.KEEPALIVE_MARGIN_SECONDS!,
      marginFraction: 0.1,
      jitterSeconds: n.KEEPALIVE_JITTER_SECONDS!,
      unknownLifetimeIntervalSeconds: 30 * 86_400,
      retryBaseSeconds: 60,
      retryMaxSeconds: n.KEEPALIVE_RETRY_MAX_SECONDS!,
    },
    outbound: Object.fromEntries(
      platforms().map(({ name, env: names }) => [
        name,
        { ratePerSecond: n[names.rateLimitRps]!, maxConcurrent: n.OUTBOUND_CONCURRENCY! },
      ]),
    ) as RefresherSettings['outbound'],
  };
}
