import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { SocialAccount } from '../../src/domain/account.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import { ApiKeys } from '../../src/service/apiKeys.js';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { ApiKeyRepository } from '../../src/store/apiKeyRepository.js';

/** Shared by the crash and database-fault tests: processes, seeding, and the end-of-run audit. */

export interface CliProcess {
  child: ChildProcess;
  /** The last 20 kB it printed, for a failure message. */
  output(): string;
  exited: Promise<number | null>;
}

/** Runs the built CLI (`node dist/cli/main.js …`), as an operator does. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, ['dist/cli/main.js', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** SIGTERM, then SIGKILL if it has not stopped within `graceMs`. */
export async function stopGracefully(process: CliProcess, graceMs = 15_000): Promise<void> {
  if (process.child.exitCode !== null || process.child.signalCode !== null) return;
  process.child.kill('SIGTERM');
  const timer = setTimeout(() => process.child.kill('SIGKILL'), graceMs);
  await process.exited;
  clearTimeout(timer);
}

export async function createApiKey(app: SocialOAuth, name: string): Promise<string> {
  return (await new ApiKeys(new ApiKeyRepository(storeOf(app).database), app.clock).create(name)).key;
}

export type SeedPlan = Partial<Record<ProviderName, number>>;

/**
 * Registers accounts at the simulator and stores them as connected. TikTok and YouTube tokens live
 * as long as the simulator's lifetimes say (seconds, in these tests), so callers keep refreshing
 * them; Instagram tokens are 30 days old and expire in 2 days, so the keep-alive refreshes each once.
 */
export async function seedAccounts(
  app: SocialOAuth,
  simulator: ProviderSimulator,
  plan: SeedPlan,
  prefix: string,
): Promise<SocialAccount[]> {
  const now = Date.now();
  const day = 86_400_000;
  const accounts: SocialAccount[] = [];
  for (const [provider, count] of Object.entries(plan) as Array<[ProviderName, number]>) {
    for (let i = 0; i < count; i++) {
      const seeded = simulator.seedAccount(
        provider,
        provider === 'instagram'
          ? {
              externalAccountId: `${prefix}-${provider}-${i}`,
              issuedAt: now - 30 * day,
              accessExpiresAt: now + 2 * day,
            }
          : { externalAccountId: `${prefix}-${provider}-${i}` },
      );
      accounts.push(
        await storeOf(app).accounts.insert(
          {
            ownerId: `owner-${prefix}`,
            provider,
            externalAccountId: seeded.externalAccountId,
            displayName: seeded.displayName,
            accessToken: seeded.accessToken,
            refreshToken: seeded.refreshToken,
            expiresAt: seeded.accessExpiresAt,
            refreshTokenExpiresAt: seeded.refreshExpiresAt,
            scopes: seeded.scopes,
            tokenIssuedAt: seeded.issuedAt,
          },
          now,
        ),
      );
    }
  }
  return accounts;
}

export interface LostAccount {
  accountId: string;
  provider: ProviderName;
  externalAccountId: string;
  status: string;
  /** The ledger's reason and the platform's error code of the account's needs_reauth event. */
  ledgerReason: string | null;
  providerErrorCode: string | null;
  /** The ledger says the refresh token may have been spent by a refresh whose answer we lost. */
  possiblyLostInFlight: boolean;
  /** Successful refreshes the simulator answered minus refreshes we committed (`refreshed` rows). */
  rotationsNeverStored: number;
}

export interface AuditReport {
  accounts: number;
  active: number;
  lost: LostAccount[];
  /** Lost accounts the ledger flags `possiblyLostInFlight` (or that lost no token: a platform verdict). */
  detected: number;
  /** Lost without a flag, or active with a token the platform refuses: must be zero. */
  undetected: number;
  /** Active accounts whose stored access or refresh token the simulator refuses. */
  activeButInvalid: string[];
}

/**
 * The end-of-run audit. First a forced refresh of every active account, so that a refresh token
 * spent by a refresh we never committed shows itself now (as invalid_grant), not months later.
 * Then every account must be active with tokens the simulator accepts, or `needs_reauth` with its
 * reason in the ledger; a lost TikTok account must be flagged `possiblyLostInFlight`, and the
 * simulator's log must show the rotation whose token we never stored.
 */
export async function auditAccounts(
  app: SocialOAuth,
  simulator: ProviderSimulator,
  ids: string[],
): Promise<AuditReport> {
  await runWithConcurrency(ids, 8, async (id) => {
    // A transient failure here (a timeout on a loaded machine, a lease a killed process left) is
    // not a loss: ask again, a bounded number of times, until the platform has answered.
    for (let attempt = 0; attempt < 6; attempt++) {
      const account = await storeOf(app).accounts.findById(id);
      if (account?.status !== 'active') return;
      const { result } = await app.tokens.refreshOAuthToken(id);
      if (
        !result ||
        result.success ||
        (result.reason !== 'provider_error' && result.reason !== 'refresh_in_progress')
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  });
  const log = simulator.refreshLog();
  const report: AuditReport = {
    accounts: ids.length,
    active: 0,
    lost: [],
    detected: 0,
    undetected: 0,
    activeButInvalid: [],
  };
  for (const id of ids) {
    const account = (await storeOf(app).accounts.findById(id))!;
    if (account.status === 'active') {
      report.active++;
      const accessValid =
        account.accessToken !== null && simulator.isAccessTokenValid(account.provider, account.accessToken);
      const refreshValid =
        account.provider === 'instagram' ||
        (account.refreshToken !== null &&
          simulator.isRefreshTokenValid(account.provider, account.refreshToken));
      if (!accessValid || !refreshValid) {
        report.activeButInvalid.push(id);
        report.undetected++;
      }
      continue;
    }
    const events = (await storeOf(app).ledger.list({ accountId: id, limit: 1000 })).events;
    const flagged = events.filter((event) => event.type === 'needs_reauth').at(-1) ?? null;
    const answered = log.filter(
      (entry) =>
        entry.provider === account.provider &&
        entry.externalAccountId === account.externalAccountId &&
        entry.fault === null &&
        entry.status === 200 &&
        entry.error === null,
    ).length;
    const committed = events.filter((event) => event.type === 'refreshed').length;
    const lost: LostAccount = {
      accountId: id,
      provider: account.provider,
      externalAccountId: account.externalAccountId,
      status: account.status,
      ledgerReason: flagged?.reason ?? null,
      providerErrorCode: flagged?.providerErrorCode ?? null,
      possiblyLostInFlight: flagged?.detail?.possiblyLostInFlight === true,
      rotationsNeverStored: answered - committed,
    };
    report.lost.push(lost);
    if (flagged !== null && lost.possiblyLostInFlight) report.detected++;
    else report.undetected++;
  }
  return report;
}

export async function runWithConcurrency<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Keeps a run's figures where docs/RELIABILITY.md can quote them from. */
export function writeResult(name: string, result: unknown): void {
  mkdirSync('test-results', { recursive: true });
  writeFileSync(`test-results/${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface StormCounts {
  requests: number;
  ok: number;
  /** The service we asked was down (killed, restarting): refused or reset connection. */
  refused: number;
  otherStatus: Record<string, number>;
  /** 200 answers whose token the simulator refused: must be zero. */
  invalidServed: number;
}

/**
 * Callers that ask for tokens of random accounts at random live services until stopped, as a
 * publishing engine's workers do, and check every token handed out with the platform.
 */
export function startStorm(options: {
  ports: () => number[];
  accounts: readonly SocialAccount[];
  apiKey: string;
  simulator: ProviderSimulator;
  loops: number;
  random: () => number;
}): { counts: StormCounts; stop(): Promise<StormCounts> } {
  const { accounts, random, simulator } = options;
  const counts: StormCounts = { requests: 0, ok: 0, refused: 0, otherStatus: {}, invalidServed: 0 };
  let storming = true;
  const caller = async () => {
    while (storming) {
      const account = accounts[Math.floor(random() * accounts.length)]!;
      const ports = options.ports();
      const port = ports[Math.floor(random() * ports.length)];
      if (port === undefined) {
        await sleep(50);
        continue;
      }
      counts.requests++;
      try {
        const response = await fetch(`http://127.0.0.1:${port}/v1/accounts/${account.id}/token`, {
          method: 'POST',
          headers: { authorization: `Bearer ${options.apiKey}` },
          signal: AbortSignal.timeout(15_000),
        });
        const body = (await response.json()) as { access_token?: string };
        if (response.status === 200) {
          counts.ok++;
          if (!simulator.isAccessTokenValid(account.provider, body.access_token!)) counts.invalidServed++;
        } else {
          counts.otherStatus[response.status] = (counts.otherStatus[response.status] ?? 0) + 1;
        }
      } catch {
        counts.refused++;
        await sleep(20);
      }
    }
  };
  const loops = Array.from({ length: options.loops }, caller);
  return {
    counts,
    async stop() {
      storming = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

export interface HealthSample {
  atMs: number;
  status: number | 'refused';
}

/** Polls GET /health every `everyMs` until stopped: what a load balancer would have seen. */
export function watchHealth(port: number, everyMs = 100): { samples: HealthSample[]; stop(): Promise<void> } {
  const samples: HealthSample[] = [];
  const started = Date.now();
  let watching = true;
  const loop = (async () => {
    while (watching) {
      let status: HealthSample['status'];
      try {
        status = (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) }))
          .status;
      } catch {
        status = 'refused';
      }
      samples.push({ atMs: Date.now() - started, status });
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    async stop() {
      watching = false;
      await loop;
    },
  };
}

export async function waitHealthy(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`service on port ${port} did not become healthy`);
    await sleep(50);
  }
}
