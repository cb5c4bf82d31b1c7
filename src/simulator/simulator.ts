import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../domain/clock.js';
import type { ProviderName } from '../domain/providerName.js';
import { PROVIDER_NAMES, platform } from '../platforms/registry.js';
import { BASELINE_SINK_PATH, baselineSink } from './baselineSink.js';
import { type AnswerRewrite, FaultInjector } from './faults.js';
import type { SimulatorSettings } from './platformRoutes.js';
import {
  type ClientCredentials,
  type Consent,
  DEFAULT_LIFETIMES,
  type RefreshLogEntry,
  type SeedAccountInput,
  type SeededTokens,
  type SimulatorLifetimes,
  SimulatorState,
} from './state.js';
import { UploadSimulatorState } from './uploads.js';
import { json, readRequest, type SimResponse, writeResponse } from './wire.js';

/**
 * One real HTTP server speaking the three platforms' wire formats under `/tiktok`, `/instagram` and
 * `/youtube`, so that providers, the service and the sandbox are exercised over real sockets with
 * the real paths (`TIKTOK_BASE_URL=http://127.0.0.1:PORT/tiktok`).
 */

export interface ProviderSimulatorOptions {
  /** 0 (default) = an ephemeral port. */
  port?: number;
  host?: string;
  clock?: Clock;
  lifetimes?: Partial<SimulatorLifetimes>;
  /** Added before every answer, in real milliseconds. */
  latencyMs?: number;
  /** When given for a platform, other client credentials get that platform's invalid_client. */
  clients?: Partial<Record<ProviderName, ClientCredentials>>;
  /** The random source of probabilistic faults; pass `seededRandom(seed)` for replayable chaos. */
  random?: () => number;
  settings?: Partial<SimulatorSettings>;
}

export interface ProviderSimulator {
  /** Base URL, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  baseUrlFor(provider: ProviderName): string;
  close(): Promise<void>;
  readonly faults: FaultInjector;
  /** Mutable while running. */
  readonly settings: SimulatorSettings;
  readonly clock: Clock;

  /** Registers an account with a live grant, as if the user had connected; returns its tokens. */
  seedAccount(provider: ProviderName, input: SeedAccountInput): SeededTokens;
  /** A fresh grant for an account (new consent): new tokens, earlier ones untouched. */
  issueTokens(provider: ProviderName, externalAccountId: string): SeededTokens;
  /** Who consents at the next authorize request for the platform (or a denial). */
  queueConsent(provider: ProviderName, consent: Consent): void;
  /** The user removed the app (or revoked access): every token of the account stops working. */
  revokeGrant(provider: ProviderName, externalAccountId: string): void;

  /**
   * Calls that reached the platform's refresh endpoint for the account, including those an injected
   * fault answered (a retried 503 counts twice), so a test can assert "exactly one refresh".
   */
  refreshCalls(provider: ProviderName, externalAccountId: string): number;
  totalRefreshCalls(provider?: ProviderName): number;
  /** Every refresh call with its outcome, oldest first: to see why a count is off. */
  refreshLog(provider?: ProviderName): readonly RefreshLogEntry[];
  resetCounters(): void;
  /** Whether the platform would accept this access token right now. */
  isAccessTokenValid(provider: ProviderName, token: string): boolean;
  /** Whether this refresh token would be accepted (exists, not spent, revoked, expired or idle too long). */
  isRefreshTokenValid(provider: ProviderName, token: string): boolean;
  /**
   * The publishing endpoints' memory (issue 13): uploads with their received bytes and hashes, posts
   * created, scriptable upload faults (`uploads.setFaults`) and settings (`uploads.settings`).
   */
  readonly uploads: UploadSimulatorState;
  /** Whether any token of the account still works: false once the grant is revoked or dead. */
  hasLiveGrant(provider: ProviderName, externalAccountId: string): boolean;
}

/** A seeded account's access lifetime on a platform without its own lifetime setting. */
const DEFAULT_ACCESS_SECONDS = 3600;

export async function startProviderSimulator(
  options: ProviderSimulatorOptions = {},
): Promise<ProviderSimulator> {
  const clock = options.clock ?? systemClock;
  const lifetimes: SimulatorLifetimes = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
  const state = new SimulatorState(
    clock,
    lifetimes,
    options.clients ?? {},
    (name) => platform(name).simulator,
  );
  const faults = new FaultInjector(options.random);
  const uploads = new UploadSimulatorState(clock);
  const settings: SimulatorSettings = {
    tiktokOAuthErrorStatus: 200,
    instagramTokenShape: 'wrapped',
    googlePublishingStatus: 'production',
    tiktokRateLimit: null,
    instagramAppUsagePercent: null,
    ...options.settings,
  };
  const hanging = new Set<NodeJS.Timeout>();

  const server = createServer((incoming, outgoing) => {
    handle(incoming, outgoing).catch(() => {
      if (!outgoing.headersSent) writeResponse(outgoing, json(500, { error: 'simulator_failure' }));
      else outgoing.destroy();
    });
  });

  async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const path = new URL(incoming.url ?? '/', 'http://simulator.invalid').pathname;
    // The upload benchmark's raw baseline, outside every platform prefix (baselineSink.ts).
    if (path === BASELINE_SINK_PATH && incoming.method === 'PUT') return baselineSink(incoming, outgoing);
    // Each registered platform under `/<name>`, with the routes its folder exports.
    const provider = PROVIDER_NAMES.find((name) => path === `/${name}` || path.startsWith(`/${name}/`));
    if (provider === undefined) {
      for await (const _ of incoming) {
        // drain the body so the connection can be reused
      }
      writeResponse(outgoing, json(404, { error: 'unknown platform prefix' }));
      return;
    }
    const uploadRoutes = platform(provider).simulator.uploadRoutes;
    const method = incoming.method ?? 'GET';
    const url = new URL(incoming.url ?? '/', 'http://simulator.invalid');
    const uploadPath = url.pathname.slice(provider.length + 1) || '/';
    if (uploadRoutes?.matches(method, uploadPath)) {
      if (options.latencyMs) await delay(options.latencyMs);
      const publicBase = `http://${incoming.headers.host ?? 'simulator.invalid'}/${provider}`;
      const exchange = { incoming, outgoing, method, path: uploadPath, query: url.searchParams, publicBase };
      return uploadRoutes.handle(exchange, { state, uploads });
    }
    const routes = platform(provider).simulator.routes;
    const request = await readRequest(incoming, provider.length + 1);
    if (options.latencyMs) await delay(options.latencyMs);

    const kind = routes.routeKind(request);
    if (kind === null) {
      writeResponse(outgoing, json(404, { error: 'not_found' }));
      return;
    }
    // Read before the platform handles it, while the token still names its account.
    const refreshSubject = kind === 'refresh' ? routes.refreshSubject(request, state) : null;
    const fault = faults.next(provider, kind);
    const response =
      fault.kind === 'fail'
        ? routes.serverError(fault.status)
        : fault.kind === 'rateLimit'
          ? routes.rateLimited(fault.retryAfterSeconds)
          : fault.kind === 'hang'
            ? null
            : fault.kind === 'rewrite' && fault.skipsPlatform
              ? json(200, {})
              : routes.handle(request, { state, settings });
    // dropAnswer: the platform did the work above; the answer is lost on the way back.
    // rewrite: the platform did the work; its answer arrives altered.
    const answer =
      fault.kind === 'dropAnswer'
        ? null
        : fault.kind === 'rewrite' && response !== null && response.kind === 'json'
          ? rewritten(response, fault.rewrite)
          : response;
    if (kind === 'refresh') {
      state.recordRefresh({
        provider,
        externalAccountId: refreshSubject,
        atMs: clock.now(),
        fault: fault.kind === 'none' ? null : fault.kind,
        status: response === null ? null : response.kind === 'redirect' ? 302 : response.status,
        error: response?.kind === 'json' ? platformErrorCode(response.body) : null,
      });
    }
    if (answer !== null) return writeResponse(outgoing, answer);
    // Hang: hold the socket without a byte of answer, then drop it, as a stuck load balancer does.
    const timer = setTimeout(
      () => {
        hanging.delete(timer);
        outgoing.destroy();
      },
      (fault as { ms: number }).ms,
    );
    hanging.add(timer);
  }

  /** Only Google documents an idle limit (six months unused). */
  const refreshIdleMs = (provider: ProviderName) =>
    provider === 'youtube' ? lifetimes.googleRefreshIdleSeconds * 1000 : null;

  const address = await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  const url = `http://${address.address}:${address.port}`;

  function seedAccount(provider: ProviderName, input: SeedAccountInput): SeededTokens {
    const account = state.upsertAccount(provider, input.externalAccountId, input.displayName);
    const issuedAt = input.issuedAt ?? clock.now();
    const scopes = input.scopes ?? state.defaultScopes(provider);
    const accessLifetime =
      {
        tiktok: lifetimes.tiktokAccessSeconds,
        instagram: lifetimes.instagramLongSeconds,
        youtube: lifetimes.googleAccessSeconds,
      }[provider] ?? DEFAULT_ACCESS_SECONDS;
    const access = state.issueAccessToken(provider, account.externalAccountId, {
      scopes,
      lifetimeSeconds: accessLifetime,
      issuedAtMs: issuedAt,
      expiresAtMs: input.accessExpiresAt,
      token: input.accessToken,
      // A seeded Instagram account is in the state our service keeps: a long-lived token.
      instagramKind: provider === 'instagram' ? 'long' : undefined,
    });
    state.markConsented(provider, account.externalAccountId);
    const refresh =
      provider === 'instagram'
        ? null
        : state.issueRefreshToken(provider, account.externalAccountId, {
            scopes,
            issuedAtMs: issuedAt,
            token: input.refreshToken,
            expiresAtMs:
              input.refreshExpiresAt ??
              (provider === 'tiktok' ? issuedAt + lifetimes.tiktokRefreshSeconds * 1000 : null),
          });
    return {
      provider,
      externalAccountId: account.externalAccountId,
      displayName: account.displayName,
      accessToken: access.token,
      refreshToken: refresh?.token ?? null,
      accessExpiresAt: access.expiresAtMs,
      refreshExpiresAt: refresh?.expiresAtMs ?? null,
      issuedAt,
      scopes,
    };
  }

  return {
    url,
    baseUrlFor: (provider) => `${url}/${provider}`,
    faults,
    settings,
    clock,
    uploads,
    seedAccount,
    issueTokens: (provider, externalAccountId) => seedAccount(provider, { externalAccountId }),
    queueConsent: (provider, consent) => state.queueConsent(provider, consent),
    revokeGrant: (provider, externalAccountId) => state.revokeGrant(provider, externalAccountId),
    refreshCalls: (provider, externalAccountId) => state.refreshCalls(provider, externalAccountId),
    totalRefreshCalls: (provider) => state.totalRefreshCalls(provider),
    refreshLog: (provider) => state.refreshLog(provider),
    resetCounters: () => state.resetCounters(),
    isAccessTokenValid: (provider, token) => state.validAccessToken(provider, token) !== null,
    isRefreshTokenValid(provider, token) {
      const record = state.findRefreshToken(provider, token);
      return record !== undefined && state.refreshTokenUsable(record, refreshIdleMs(provider));
    },
    hasLiveGrant: (provider, externalAccountId) =>
      state.hasLiveGrant(provider, externalAccountId, refreshIdleMs(provider)),
    async close() {
      for (const timer of hanging) clearTimeout(timer);
      hanging.clear();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Hung requests and keep-alive sockets would hold close() open forever.
        server.closeAllConnections();
      });
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** `invalid_grant`, `access_token_invalid`, `190`: whatever the platform's body calls its error. */
function platformErrorCode(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || !('error' in body)) return null;
  const error = (body as { error: unknown }).error;
  if (typeof error === 'string') return error === '' ? null : error;
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = String((error as { code: unknown }).code);
    return code === 'ok' ? null : code;
  }
  return null;
}

function rewritten(response: SimResponse & { kind: 'json' }, rewrite: AnswerRewrite): SimResponse {
  const altered = rewrite({ status: response.status, body: structuredClone(response.body) });
  const status = altered.status ?? response.status;
  return 'text' in altered
    ? { kind: 'raw', status, text: altered.text, contentType: 'application/json; charset=utf-8' }
    : { kind: 'json', status, body: altered.body, headers: response.headers };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
