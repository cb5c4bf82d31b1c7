import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { generateKeyEntry } from '../src/crypto/tokenCipher.js';
import type { ProviderName } from '../src/domain/providerName.js';
import { PROVIDER_NAMES } from '../src/platforms/registry.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { SeedAccountInput, SeededTokens } from '../src/simulator/state.js';
import { scriptBeside } from '../test/support/passWorker.js';
import { SIM_CLIENTS, simulatorEnv as testSimulatorEnv } from '../test/support/simulator.js';
import type { SimulatorCommand, UploadReport } from './simulatorChild.js';

/** The PostgreSQL server the bench creates its databases on (the tests' default). */
export const ADMIN_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_KEYS = generateKeyEntry('bench');
const DAY = 86_400_000;

export interface BenchDatabase {
  kind: 'sqlite' | 'postgres';
  env: NodeJS.ProcessEnv;
  url: string | undefined;
  drop(): Promise<void>;
}

/** A fresh database: SQLite in a temporary folder, or a PostgreSQL database of its own. */
export async function createDatabase(kind: 'sqlite' | 'postgres'): Promise<BenchDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'social-oauth-bench-'));
  if (kind === 'sqlite') {
    return {
      kind,
      url: undefined,
      env: { DATA_DIR: dataDir, TOKEN_ENCRYPTION_KEYS: BENCH_KEYS },
      async drop() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `social_oauth_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    kind,
    url: url.toString(),
    env: { DATA_DIR: dataDir, DATABASE_URL: url.toString(), TOKEN_ENCRYPTION_KEYS: BENCH_KEYS },
    async drop() {
      rmSync(dataDir, { recursive: true, force: true });
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** The simulator's client credentials and the provider settings pointing at it: the tests' own. */
export { SIM_CLIENTS };

/**
 * The simulator, run in a child process (bench/simulatorChild.ts): a platform's CPU is not ours,
 * and on two cores an in-process simulator would bill its own work to the service.
 */
export interface BenchSimulator {
  readonly url: string;
  baseUrlFor(provider: ProviderName): string;
  seedAccounts(provider: ProviderName, inputs: SeedAccountInput[]): Promise<SeededTokens[]>;
  totalRefreshCalls(provider: ProviderName): Promise<number>;
  accountsRefreshedMoreThanOnce(provider: ProviderName, externalAccountIds: string[]): Promise<number>;
  resetCounters(): Promise<void>;
  /** The upload endpoints' knobs (processing looks, quotas). */
  uploadSettings(settings: Extract<SimulatorCommand, { op: 'uploadSettings' }>['settings']): Promise<void>;
  /** What the platform kept of these accounts' uploads, and the posts it made. */
  uploadsOf(provider: ProviderName, externalAccountIds: string[]): Promise<UploadReport[]>;
  /** Stamps the end of Instagram's downloads of video_url while on. */
  watchFetches(on: boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startSimulator(latencyMs = 0): Promise<BenchSimulator> {
  const child = await startIpcChild<SimulatorCommand>('./simulatorChild', {
    SIMULATOR_CLIENTS: JSON.stringify(SIM_CLIENTS),
    SIMULATOR_LATENCY_MS: String(latencyMs),
  });
  const url = child.ready.ready as string;
  const call = child.call;
  return {
    url,
    baseUrlFor: (provider) => `${url}/${provider}`,
    seedAccounts: (provider, inputs) => call({ op: 'seed', provider, inputs }),
    totalRefreshCalls: (provider) => call({ op: 'totalRefreshCalls', provider }),
    accountsRefreshedMoreThanOnce: (provider, externalAccountIds) =>
      call({ op: 'accountsRefreshedMoreThanOnce', provider, externalAccountIds }),
    resetCounters: () => call({ op: 'resetCounters' }),
    uploadSettings: (settings) => call({ op: 'uploadSettings', settings }),
    uploadsOf: (provider, externalAccountIds) => call({ op: 'uploadsOf', provider, externalAccountIds }),
    watchFetches: (on) => call({ op: 'watchFetches', on }),
    close: child.close,
  };
}

export interface IpcChild<Command> {
  /** The child's first message (`{ ready, … }`). */
  ready: Record<string, unknown>;
  call<T>(command: Command): Promise<T>;
  close(): Promise<void>;
}

/**
 * A bench script beside this one in a process of its own, driven over IPC: it sends `{ ready }`
 * once started, then answers each `{ id, command }` with `{ id, result }` or `{ id, error }`, and
 * ends when the channel closes.
 */
export async function startIpcChild<Command>(
  relativeName: string,
  env: NodeJS.ProcessEnv,
  execArgv: string[] = [],
): Promise<IpcChild<Command>> {
  const script = scriptBeside(import.meta.url, relativeName);
  const child = fork(script.path, {
    execArgv: [...script.nodeArgs, ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const error = new Error(`${relativeName} exited with ${code}`);
      reject(error);
      for (const entry of waiting.values()) entry.reject(error);
      waiting.clear();
    });
    child.on('message', (message: { ready?: unknown; id?: number; result?: unknown; error?: string }) => {
      if (message.ready !== undefined) return resolve(message as Record<string, unknown>);
      const entry = waiting.get(message.id!);
      waiting.delete(message.id!);
      if (message.error !== undefined) entry?.reject(new Error(message.error));
      else entry?.resolve(message.result);
    });
  });
  return {
    ready,
    call: <T>(command: Command) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, command });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.disconnect();
      }),
  };
}

/** Provider settings pointing at the simulator, rate limits off unless the bench sets them. */
export function simulatorEnv(simulator: Pick<BenchSimulator, 'baseUrlFor'>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = testSimulatorEnv(simulator);
  for (const provider of PROVIDER_NAMES) env[`${provider.toUpperCase()}_RATE_LIMIT_RPS`] = '0';
  return env;
}

/**
 * `count` TikTok accounts known to the simulator and stored by us. `dueNow`: connected 179 days ago,
 * so the refresh token dies tomorrow and the keep-alive is due; `expired`: the access token has
 * expired (an on-demand refresh is needed). Inserted by 16 lanes.
 */
export async function seedTikTok(
  app: SocialOAuth,
  simulator: BenchSimulator,
  count: number,
  options: { prefix: string; dueNow?: boolean; expired?: boolean },
): Promise<string[]> {
  const now = Date.now();
  const ids: string[] = new Array(count);
  const CHUNK = 1000;
  for (let start = 0; start < count; start += CHUNK) {
    const inputs = Array.from({ length: Math.min(CHUNK, count - start) }, (_, k) => ({
      externalAccountId: `${options.prefix}-${start + k}`,
      issuedAt: options.dueNow ? now - 179 * DAY : now - 3 * 3_600_000,
      accessExpiresAt: options.expired ? now - 1000 : undefined,
    }));
    const seeded = await simulator.seedAccounts('tiktok', inputs);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let k = next++; k < seeded.length; k = next++) {
          ids[start + k] = await insertAccount(app, seeded[k]!, now);
        }
      }),
    );
  }
  return ids;
}

/**
 * Stores an account the simulator seeded, as if its user had connected (through the store: the
 * public API has no way to insert an account with given tokens).
 */
export async function insertAccount(
  app: SocialOAuth,
  tokens: SeededTokens,
  now = Date.now(),
): Promise<string> {
  const account = await storeOf(app).accounts.insert(
    {
      ownerId: 'bench',
      provider: tokens.provider,
      externalAccountId: tokens.externalAccountId,
      displayName: null,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      expiresAt: tokens.accessExpiresAt,
      refreshTokenExpiresAt: tokens.refreshExpiresAt,
      scopes: tokens.scopes,
      tokenIssuedAt: tokens.issuedAt,
    },
    now,
  );
  return account.id;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}
