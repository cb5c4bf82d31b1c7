/**
 * Sustained load (`npm run test:load`, not in CI): the built `social-oauth serve` under
 *   - POST /v1/accounts/:id/token from autocannon (LOAD_CONNECTIONS connections, random accounts
 *     whose tokens live two minutes, so refreshes go on all the time), and
 *   - the whole connect flow (connect session → authorize at the simulator → callback) in loops,
 * for LOAD_SECONDS (default 240). Reports error rates, latency percentiles, the service's RSS and
 * heap sampled every 5 s (a preloaded probe), and whether memory stayed flat. Figures go to
 * test-results/load.json; docs/RELIABILITY.md quotes them.
 *
 * Environment: LOAD_SECONDS, LOAD_CONNECTIONS (16), LOAD_CONNECT_LOOPS (2), LOAD_ACCOUNTS (1000),
 * LOAD_DATABASE (sqlite | postgres; postgres uses PG_TEST_URL's server).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { loadConfig } from '../src/config.js';
import type { SocialAccount } from '../src/domain/account.js';
import type { ProviderName } from '../src/domain/providerName.js';
import { PROVIDER_NAMES } from '../src/platforms/registry.js';
import { createLogger } from '../src/service/logging.js';
import { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { startProviderSimulator } from '../src/simulator/simulator.js';
import { createDatabase, SIM_CLIENTS, simulatorEnv } from './support.js';

const SECONDS = Number(process.env.LOAD_SECONDS ?? 240);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 16);
const CONNECT_LOOPS = Number(process.env.LOAD_CONNECT_LOOPS ?? 2);
const ACCOUNTS = Number(process.env.LOAD_ACCOUNTS ?? 1000);
const KIND = (process.env.LOAD_DATABASE ?? 'sqlite') as 'sqlite' | 'postgres';
const ACCESS_SECONDS = 120;

interface MemorySample {
  atMs: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** The fields of autocannon 8's result this script reads (its own d.ts declares fewer). */
interface CannonResult {
  requests: { average: number; total: number };
  latency: {
    average: number;
    p50: number;
    p90: number;
    p97_5: number;
    p99: number;
    p99_9: number;
    max: number;
  };
  non2xx: number;
  errors: number;
  timeouts: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

if (!existsSync('dist/cli/main.js')) throw new Error('build first: npm run build');

const database = await createDatabase(KIND);
const simulator = await startProviderSimulator({
  port: 0,
  clients: SIM_CLIENTS,
  latencyMs: 20,
  lifetimes: { tiktokAccessSeconds: ACCESS_SECONDS, googleAccessSeconds: ACCESS_SECONDS },
});
const port = 20_000 + Math.floor(Math.random() * 20_000);
const base = `http://127.0.0.1:${port}`;
const env: NodeJS.ProcessEnv = {
  ...database.env,
  ...simulatorEnv(simulator),
  HOST: '127.0.0.1',
  PORT: String(port),
  PUBLIC_BASE_URL: base,
  REFRESH_THRESHOLD_SECONDS: String(ACCESS_SECONDS / 2),
  LOG_LEVEL: 'warn',
};
for (const provider of PROVIDER_NAMES) {
  env[`${provider.toUpperCase()}_REDIRECT_URI`] = `${base}/oauth/${provider}/callback`;
}

// Seed: TikTok and YouTube accounts whose two-minute tokens keep the refresh path busy.
const setup = await SocialOAuth.open({ config: loadConfig(env), logger: createLogger({ level: 'warn' }) });
const accounts: SocialAccount[] = [];
const now = Date.now();
for (let i = 0; i < ACCOUNTS; i++) {
  const provider: ProviderName = i % 2 === 0 ? 'tiktok' : 'youtube';
  // Spread the expiries so refreshes come at a steady rate, not in one wave.
  const seeded = simulator.seedAccount(provider, {
    externalAccountId: `load-${provider}-${i}`,
    accessExpiresAt: now + Math.floor(Math.random() * ACCESS_SECONDS * 1000),
  });
  accounts.push(
    await storeOf(setup).accounts.insert(
      {
        ownerId: `owner-${i % 50}`,
        provider,
        externalAccountId: seeded.externalAccountId,
        displayName: seeded.displayName,
        accessToken: seeded.accessToken,
        refreshToken: seeded.refreshToken,
        expiresAt: seeded.accessExpiresAt,
        refreshTokenExpiresAt: seeded.refreshExpiresAt,
        scopes: seeded.scopes,
        tokenIssuedAt: now - 60_000,
      },
      now,
    ),
  );
}
const apiKey = (await setup.apiKeys.create('load')).key;
await setup.close();

// The service: the built CLI, with a memory probe preloaded.
const memory: MemorySample[] = [];
const service = spawn(
  process.execPath,
  ['--import', './bench/loadMemoryProbe.mjs', 'dist/cli/main.js', 'serve'],
  {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
let serviceOutput = '';
let pending = '';
service.stderr.on('data', (chunk: Buffer) => {
  pending += chunk.toString();
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    if (line.startsWith('LOADMEM ')) memory.push(JSON.parse(line.slice(8)) as MemorySample);
    else serviceOutput = `${serviceOutput + line}\n`.slice(-10_000);
  }
});
service.stdout.on('data', (chunk: Buffer) => {
  serviceOutput = (serviceOutput + chunk.toString()).slice(-10_000);
});
for (let tries = 0; ; tries++) {
  try {
    if ((await fetch(`${base}/health`)).ok) break;
  } catch {
    // not yet
  }
  if (tries > 300) throw new Error(`service did not start: ${serviceOutput}`);
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const refreshCallsBefore = simulator.totalRefreshCalls();
console.log(
  `load: ${SECONDS}s on ${KIND}, ${ACCOUNTS} accounts, ${CONNECTIONS} token connections, ${CONNECT_LOOPS} connect loops`,
);

// The connect flow, as a browser does it, in loops.
const connect = {
  flows: 0,
  ok: 0,
  failed: 0,
  latencies: [] as number[],
  failures: {} as Record<string, number>,
};
let connecting = true;
let connectSeq = 0;
async function connectLoop(): Promise<void> {
  while (connecting) {
    const provider = PROVIDER_NAMES[connectSeq % PROVIDER_NAMES.length]!;
    const n = connectSeq++;
    const started = performance.now();
    connect.flows++;
    try {
      const created = await fetch(`${base}/v1/connect-sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ provider, owner_id: `connect-owner-${n % 100}`, return_to: `${base}/done` }),
      });
      if (created.status !== 201) throw new Error(`session ${created.status}`);
      const { url } = (await created.json()) as { url: string };
      const toPlatform = await fetch(url, { redirect: 'manual' });
      await toPlatform.arrayBuffer();
      const authorize = new URL(toPlatform.headers.get('location') ?? 'about:blank');
      if (toPlatform.status !== 302 && toPlatform.status !== 303)
        throw new Error(`connect ${toPlatform.status}`);
      // Instagram user ids are numbers (17 digits, like real ones); the others are strings.
      const externalId =
        provider === 'instagram' ? `1784${String(n).padStart(13, '0')}` : `connected-${provider}-${n}`;
      authorize.searchParams.set('sim_account', externalId);
      const consent = await fetch(authorize, { redirect: 'manual' });
      await consent.arrayBuffer();
      const callback = consent.headers.get('location');
      if (consent.status !== 302 || callback === null) throw new Error(`authorize ${consent.status}`);
      const landed = await fetch(callback, { redirect: 'manual' });
      await landed.arrayBuffer();
      const exit = landed.headers.get('location') ?? '';
      if (
        landed.status < 300 ||
        landed.status >= 400 ||
        !exit.startsWith(`${base}/done`) ||
        /error/.test(exit)
      ) {
        throw new Error(
          `${provider} callback ${landed.status} ${new URL(exit, base).searchParams.toString()}`,
        );
      }
      connect.ok++;
      connect.latencies.push(performance.now() - started);
    } catch (error) {
      connect.failed++;
      const key = error instanceof Error ? error.message : String(error);
      connect.failures[key] = (connect.failures[key] ?? 0) + 1;
    }
  }
}
const connectLoops = Array.from({ length: CONNECT_LOOPS }, connectLoop);

const cannon = (await autocannon({
  url: base,
  connections: CONNECTIONS,
  duration: SECONDS,
  headers: { authorization: `Bearer ${apiKey}` },
  requests: [
    {
      method: 'POST',
      setupRequest: (request: Record<string, unknown>) => ({
        ...request,
        path: `/v1/accounts/${accounts[Math.floor(Math.random() * accounts.length)]!.id}/token`,
      }),
    },
  ],
} as unknown as Parameters<typeof autocannon>[0])) as unknown as CannonResult;
connecting = false;
await Promise.all(connectLoops);
const refreshCalls = simulator.totalRefreshCalls() - refreshCallsBefore;

service.kill('SIGTERM');
await new Promise((resolve) => service.once('exit', resolve));
await simulator.close();
await database.drop();

// Memory: the first minute after a 30 s warm-up against the last minute.
const mean = (samples: MemorySample[], key: 'rss' | 'heapUsed') =>
  samples.reduce((sum, s) => sum + s[key], 0) / Math.max(1, samples.length);
const warmWindow = memory.filter((s) => s.atMs >= 30_000 && s.atMs < 90_000);
const warm = warmWindow.length > 0 ? warmWindow : memory.slice(0, Math.max(1, Math.floor(memory.length / 3)));
const last = memory.filter((s) => s.atMs >= memory.at(-1)!.atMs - 60_000);
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;
const growth = (key: 'rss' | 'heapUsed') =>
  Math.round(((mean(last, key) - mean(warm, key)) / Math.max(1, mean(warm, key))) * 1000) / 10;
const sorted = [...connect.latencies].sort((a, b) => a - b);
const pct = (p: number) =>
  Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);

const result = {
  date: new Date().toISOString(),
  database: KIND,
  seconds: SECONDS,
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  token: {
    connections: CONNECTIONS,
    requests: cannon.requests.total,
    perSecond: Math.round(cannon.requests.average),
    ok: cannon['2xx'],
    non2xx: cannon.non2xx,
    errors: cannon.errors,
    timeouts: cannon.timeouts,
    errorRatePercent:
      Math.round(((cannon.non2xx + cannon.errors) / Math.max(1, cannon.requests.total)) * 10000) / 100,
    statusCodes: Object.fromEntries(Object.entries(cannon.statusCodeStats).map(([k, v]) => [k, v.count])),
    latencyMs: {
      p50: cannon.latency.p50,
      p90: cannon.latency.p90,
      p99: cannon.latency.p99,
      p99_9: cannon.latency.p99_9,
      max: cannon.latency.max,
    },
    refreshCallsAtSimulator: refreshCalls,
  },
  connect: {
    loops: CONNECT_LOOPS,
    flows: connect.flows,
    ok: connect.ok,
    failed: connect.failed,
    errorRatePercent: Math.round((connect.failed / Math.max(1, connect.flows)) * 10000) / 100,
    failures: connect.failures,
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: Math.round(sorted.at(-1) ?? 0) },
  },
  memory: {
    samples: memory.length,
    rssMb: {
      warm: mb(mean(warm, 'rss')),
      last: mb(mean(last, 'rss')),
      max: mb(Math.max(...memory.map((s) => s.rss))),
    },
    heapUsedMb: {
      warm: mb(mean(warm, 'heapUsed')),
      last: mb(mean(last, 'heapUsed')),
      max: mb(Math.max(...memory.map((s) => s.heapUsed))),
    },
    rssGrowthPercent: growth('rss'),
    heapGrowthPercent: growth('heapUsed'),
    series: memory.map((s) => ({
      atS: Math.round(s.atMs / 1000),
      rssMb: mb(s.rss),
      heapUsedMb: mb(s.heapUsed),
    })),
  },
};
mkdirSync('test-results', { recursive: true });
writeFileSync('test-results/load.json', `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify({ ...result, memory: { ...result.memory, series: undefined } }, null, 2));
// Flat: the last minute's mean heap and RSS no more than 20% above the first minute's after
// warm-up (a shrinking heap is the collector catching up, not a leak).
const flat = result.memory.heapGrowthPercent <= 20 && result.memory.rssGrowthPercent <= 20;
console.log(flat ? 'memory: flat' : 'memory: GREW');
process.exitCode = flat && result.token.errorRatePercent < 1 && result.connect.errorRatePercent < 1 ? 0 : 1;
