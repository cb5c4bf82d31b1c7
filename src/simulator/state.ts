import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { ProviderName } from '../domain/providerName.js';
import type { PlatformSimulator } from './platformRoutes.js';

/**
 * What the three fake platforms remember: accounts, tokens, authorization codes, queued consents
 * and how many refreshes each account asked for. Time comes from the injected clock, so a test can
 * move a token past its 24-hour or 60-day mark without waiting.
 */

export interface SimulatorLifetimes {
  tiktokAccessSeconds: number;
  tiktokRefreshSeconds: number;
  instagramShortSeconds: number;
  instagramLongSeconds: number;
  googleAccessSeconds: number;
  /** Google drops a refresh token unused for six months. */
  googleRefreshIdleSeconds: number;
  /** A client in Google's "Testing" publishing status gets refresh tokens that die after 7 days. */
  googleTestingRefreshSeconds: number;
}

const DAY = 86_400;

export const DEFAULT_LIFETIMES: SimulatorLifetimes = {
  tiktokAccessSeconds: 7_200,
  tiktokRefreshSeconds: 180 * DAY,
  instagramShortSeconds: 3_600,
  instagramLongSeconds: 60 * DAY,
  googleAccessSeconds: 3_599,
  googleRefreshIdleSeconds: 182 * DAY,
  // What Google sends as refresh_token_expires_in to a Testing-mode client (7 days less a second).
  googleTestingRefreshSeconds: 7 * DAY - 1,
};

/** How long an authorization code can be exchanged (all three say "minutes"; 10 is the usual). */
const CODE_LIFETIME_MS = 10 * 60_000;

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

/** Who "logs in" at the next authorize request, or a user who clicks Cancel. */
export interface Consent {
  externalAccountId: string;
  displayName?: string;
  deny?: boolean;
  /**
   * Partial consent: scopes the user leaves unticked on the consent screen (Google's granular
   * checkboxes; TikTok lets a user agree to a subset). The grant and the token response's `scope`
   * then name only the rest.
   */
  withheldScopes?: string[];
}

export interface SimAccount {
  provider: ProviderName;
  externalAccountId: string;
  displayName: string;
}

export interface AccessTokenRecord {
  provider: ProviderName;
  token: string;
  externalAccountId: string;
  scopes: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  /** Instagram only: short-lived tokens (1 hour) cannot be refreshed, only exchanged. */
  instagramKind: 'short' | 'long' | null;
  revoked: boolean;
}

export interface RefreshTokenRecord {
  provider: ProviderName;
  token: string;
  externalAccountId: string;
  scopes: string[];
  issuedAtMs: number;
  /** Absolute expiry (TikTok's refresh_expires_in, Google's Testing-mode 7 days); null = none. */
  expiresAtMs: number | null;
  lastUsedAtMs: number;
  /** TikTok rotation: used once, then dead. */
  spent: boolean;
  revoked: boolean;
}

export interface AuthorizationCodeRecord {
  provider: ProviderName;
  code: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  scopes: string[];
  externalAccountId: string;
  /** Google: whether this consent yields a refresh token (access_type=offline). */
  offline: boolean;
  expiresAtMs: number;
  used: boolean;
}

/** One call that reached a refresh endpoint, and what it was answered. */
export interface RefreshLogEntry {
  provider: ProviderName;
  /** null when the token sent was unknown to the platform. */
  externalAccountId: string | null;
  atMs: number;
  /** The injected fault that answered instead of the platform, if any. */
  fault: 'fail' | 'hang' | 'rateLimit' | 'dropAnswer' | 'rewrite' | null;
  /** null for a hang (no answer). */
  status: number | null;
  /** The platform's error code in the answer (`invalid_grant`, `190`), null on success. */
  error: string | null;
}

/** Tokens as the simulator registered them: what a test stores in our database to match. */
export interface SeededTokens {
  provider: ProviderName;
  externalAccountId: string;
  displayName: string;
  accessToken: string;
  refreshToken: string | null;
  accessExpiresAt: number;
  refreshExpiresAt: number | null;
  issuedAt: number;
  scopes: string[];
}

export interface SeedAccountInput {
  externalAccountId: string;
  displayName?: string;
  accessToken?: string;
  refreshToken?: string;
  accessExpiresAt?: number;
  refreshExpiresAt?: number;
  issuedAt?: number;
  scopes?: string[];
}

/**
 * What the state needs of each platform's folder (`simulator` of its PlatformDefinition): default
 * scopes, default consent, token prefixes. Handed in by startProviderSimulator from the registry;
 * the state does not import the registry, whose platform folders import this file (a cycle).
 */
export type PlatformSimulatorLookup = (provider: ProviderName) => PlatformSimulator;

export class SimulatorState {
  private readonly accounts = new Map<string, SimAccount>();
  private readonly accessTokens = new Map<string, AccessTokenRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly codes = new Map<string, AuthorizationCodeRecord>();
  private readonly consents = new Map<ProviderName, Consent[]>();
  private readonly refreshCounts = new Map<string, number>();
  private readonly refreshEntries: RefreshLogEntry[] = [];
  /** Google hands out a refresh token without prompt=consent only on an account's first consent. */
  private readonly consentedBefore = new Set<string>();

  constructor(
    readonly clock: Clock,
    readonly lifetimes: SimulatorLifetimes,
    private readonly clients: Partial<Record<ProviderName, ClientCredentials>>,
    private readonly platformOf: PlatformSimulatorLookup,
  ) {}

  /**
   * The scopes a consent grants when the authorize request names none: the platform's folder says
   * (src/platforms/<name>/index.ts, `simulator.defaultScopes`).
   */
  defaultScopes(provider: ProviderName): string[] {
    return [...this.platformOf(provider).defaultScopes];
  }

  /** Who consents when a test queued nobody (the platform's folder says). */
  private defaultConsent(provider: ProviderName): Consent {
    return { ...this.platformOf(provider).defaultConsent };
  }

  /** Token prefixes of the real platforms, so a token in a log says where it came from. */
  private prefixesOf(provider: ProviderName): { access: string; refresh: string; code: string } {
    return this.platformOf(provider).tokenPrefixes;
  }

  now(): number {
    return this.clock.now();
  }

  // Clients -------------------------------------------------------------------------------------

  /** True when no client is configured for the platform (anything goes) or the credentials match. */
  clientMatches(provider: ProviderName, clientId: string | null, clientSecret?: string | null): boolean {
    const client = this.clients[provider];
    if (client === undefined) return clientId !== null && clientId !== '';
    if (clientId !== client.clientId) return false;
    return clientSecret === undefined || clientSecret === client.clientSecret;
  }

  secretMatches(provider: ProviderName, clientSecret: string | null): boolean {
    const client = this.clients[provider];
    return client === undefined
      ? clientSecret !== null && clientSecret !== ''
      : clientSecret === client.clientSecret;
  }

  // Accounts and consent ------------------------------------------------------------------------

  upsertAccount(provider: ProviderName, externalAccountId: string, displayName?: string): SimAccount {
    const key = accountKey(provider, externalAccountId);
    const existing = this.accounts.get(key);
    const account: SimAccount = {
      provider,
      externalAccountId,
      displayName: displayName ?? existing?.displayName ?? `${provider} user ${externalAccountId}`,
    };
    this.accounts.set(key, account);
    return account;
  }

  account(provider: ProviderName, externalAccountId: string): SimAccount | undefined {
    return this.accounts.get(accountKey(provider, externalAccountId));
  }

  queueConsent(provider: ProviderName, consent: Consent): void {
    const queue = this.consents.get(provider) ?? [];
    queue.push(consent);
    this.consents.set(provider, queue);
  }

  /** The next queued consent, else the one named in the query (sandbox), else the default user. */
  takeConsent(provider: ProviderName, fromQuery: Consent | null): Consent {
    const queued = this.consents.get(provider)?.shift();
    return queued ?? fromQuery ?? this.defaultConsent(provider);
  }

  /** Records the consent and says whether it is the account's first (for Google's refresh-token rule). */
  markConsented(provider: ProviderName, externalAccountId: string): boolean {
    const key = accountKey(provider, externalAccountId);
    const first = !this.consentedBefore.has(key);
    this.consentedBefore.add(key);
    return first;
  }

  // Codes ---------------------------------------------------------------------------------------

  createCode(input: Omit<AuthorizationCodeRecord, 'code' | 'expiresAtMs' | 'used'>): AuthorizationCodeRecord {
    const record: AuthorizationCodeRecord = {
      ...input,
      code: randomToken(this.prefixesOf(input.provider).code),
      expiresAtMs: this.now() + CODE_LIFETIME_MS,
      used: false,
    };
    this.codes.set(tokenKey(input.provider, record.code), record);
    return record;
  }

  /** A code that exists, is unused and unexpired; marks it used, since codes are single-use. */
  redeemCode(
    provider: ProviderName,
    code: string | null,
  ): AuthorizationCodeRecord | 'unknown' | 'used' | 'expired' {
    if (code === null) return 'unknown';
    const record = this.codes.get(tokenKey(provider, code));
    if (record === undefined) return 'unknown';
    if (record.used) return 'used';
    record.used = true;
    if (this.now() >= record.expiresAtMs) return 'expired';
    return record;
  }

  // Tokens --------------------------------------------------------------------------------------

  issueAccessToken(
    provider: ProviderName,
    externalAccountId: string,
    options: {
      scopes: string[];
      lifetimeSeconds: number;
      instagramKind?: 'short' | 'long';
      issuedAtMs?: number;
      expiresAtMs?: number;
      token?: string;
    },
  ): AccessTokenRecord {
    const issuedAtMs = options.issuedAtMs ?? this.now();
    const record: AccessTokenRecord = {
      provider,
      token: options.token ?? randomToken(this.prefixesOf(provider).access),
      externalAccountId,
      scopes: options.scopes,
      issuedAtMs,
      expiresAtMs: options.expiresAtMs ?? issuedAtMs + options.lifetimeSeconds * 1000,
      instagramKind: options.instagramKind ?? null,
      revoked: false,
    };
    this.accessTokens.set(tokenKey(provider, record.token), record);
    return record;
  }

  issueRefreshToken(
    provider: ProviderName,
    externalAccountId: string,
    options: { scopes: string[]; expiresAtMs: number | null; issuedAtMs?: number; token?: string },
  ): RefreshTokenRecord {
    const issuedAtMs = options.issuedAtMs ?? this.now();
    const record: RefreshTokenRecord = {
      provider,
      token: options.token ?? randomToken(this.prefixesOf(provider).refresh),
      externalAccountId,
      scopes: options.scopes,
      issuedAtMs,
      expiresAtMs: options.expiresAtMs,
      lastUsedAtMs: issuedAtMs,
      spent: false,
      revoked: false,
    };
    this.refreshTokens.set(tokenKey(provider, record.token), record);
    return record;
  }

  findAccessToken(provider: ProviderName, token: string | null): AccessTokenRecord | undefined {
    return token === null ? undefined : this.accessTokens.get(tokenKey(provider, token));
  }

  findRefreshToken(provider: ProviderName, token: string | null): RefreshTokenRecord | undefined {
    return token === null ? undefined : this.refreshTokens.get(tokenKey(provider, token));
  }

  /** A token the platform would accept right now: known, not revoked, not expired. */
  validAccessToken(provider: ProviderName, token: string | null): AccessTokenRecord | null {
    const record = this.findAccessToken(provider, token);
    if (record === undefined || record.revoked || this.now() >= record.expiresAtMs) return null;
    return record;
  }

  /** Whether any token of the account would still be accepted: the grant is alive. */
  hasLiveGrant(provider: ProviderName, externalAccountId: string, refreshIdleMs: number | null): boolean {
    const now = this.now();
    for (const record of this.accessTokens.values()) {
      if (record.provider !== provider || record.externalAccountId !== externalAccountId) continue;
      if (!record.revoked && now < record.expiresAtMs) return true;
    }
    for (const record of this.refreshTokens.values()) {
      if (record.provider !== provider || record.externalAccountId !== externalAccountId) continue;
      if (this.refreshTokenUsable(record, refreshIdleMs)) return true;
    }
    return false;
  }

  /** Known, not spent (rotation), not revoked, not past its expiry or its idle limit. */
  refreshTokenUsable(record: RefreshTokenRecord, refreshIdleMs: number | null): boolean {
    const now = this.now();
    if (record.spent || record.revoked) return false;
    if (record.expiresAtMs !== null && now >= record.expiresAtMs) return false;
    return refreshIdleMs === null || now - record.lastUsedAtMs < refreshIdleMs;
  }

  /** The user removed the app (or the app revoked): every token of the grant dies at once. */
  revokeGrant(provider: ProviderName, externalAccountId: string): void {
    for (const record of this.accessTokens.values()) {
      if (record.provider === provider && record.externalAccountId === externalAccountId)
        record.revoked = true;
    }
    for (const record of this.refreshTokens.values()) {
      if (record.provider === provider && record.externalAccountId === externalAccountId)
        record.revoked = true;
    }
  }

  // Rate windows --------------------------------------------------------------------------------

  private readonly windows = new Map<string, { startedAtMs: number; count: number }>();

  /** Counts a request in a fixed window of `windowMs` (by the clock); returns the count and reset. */
  countInWindow(key: string, windowMs: number): { count: number; resetAtMs: number } {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now >= window.startedAtMs + windowMs) {
      window = { startedAtMs: now, count: 0 };
      this.windows.set(key, window);
    }
    window.count++;
    return { count: window.count, resetAtMs: window.startedAtMs + windowMs };
  }

  // Counters ------------------------------------------------------------------------------------

  /** A call that reached a refresh endpoint; accountless when the token was unknown. */
  recordRefresh(entry: RefreshLogEntry): void {
    this.refreshEntries.push(entry);
    const key = accountKey(entry.provider, entry.externalAccountId ?? '');
    this.refreshCounts.set(key, (this.refreshCounts.get(key) ?? 0) + 1);
  }

  refreshLog(provider?: ProviderName): readonly RefreshLogEntry[] {
    return this.refreshEntries.filter((entry) => provider === undefined || entry.provider === provider);
  }

  refreshCalls(provider: ProviderName, externalAccountId: string): number {
    return this.refreshCounts.get(accountKey(provider, externalAccountId)) ?? 0;
  }

  totalRefreshCalls(provider?: ProviderName): number {
    let total = 0;
    for (const [key, count] of this.refreshCounts) {
      if (provider === undefined || key.startsWith(`${provider}\u0000`)) total += count;
    }
    return total;
  }

  resetCounters(): void {
    this.refreshCounts.clear();
    this.refreshEntries.length = 0;
  }
}

export function randomToken(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url')}`;
}

/** A platform's log id / trace id: random, so that two answers never look identical. */
export function traceId(): string {
  return randomBytes(10).toString('hex').toUpperCase();
}

/**
 * RFC 7636 §4.6, written here again rather than imported so a bug in ours cannot agree with itself.
 * `encoding` is how the platform encodes the S256 digest: base64url per the RFC (Google), hex on
 * TikTok (Login Kit for Desktop).
 */
export function verifierMatches(
  record: AuthorizationCodeRecord,
  verifier: string | null,
  encoding: 'base64url' | 'hex' = 'base64url',
): boolean {
  if (record.codeChallenge === null) return true;
  if (verifier === null) return false;
  if (record.codeChallengeMethod === 'plain') return verifier === record.codeChallenge;
  return createHash('sha256').update(verifier).digest(encoding) === record.codeChallenge;
}

/** The scopes a consent grants: those asked for, less the ones the user left unticked. */
export function grantedScopes(requested: string[], consent: Consent): string[] {
  const withheld = new Set(consent.withheldScopes ?? []);
  return requested.filter((scope) => !withheld.has(scope));
}

function accountKey(provider: ProviderName, externalAccountId: string): string {
  return `${provider}\u0000${externalAccountId}`;
}

function tokenKey(provider: ProviderName, token: string): string {
  return `${provider}\u0000${token}`;
}
