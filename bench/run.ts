/**
 * `npm run bench`: every figure next to a baseline measured in the same run, as a ratio, so the
 * numbers mean the same on a laptop and on a CI runner. Sized for 2 cores; the whole run is bounded
 * (see docs/PERFORMANCE.md for what each line measures and the figures last recorded).
 *
 * BENCH_ONLY=hot,http,storm,sweep,scale,year,upload runs a subset (storm-sqlite or storm-postgres one
 * storm); BENCH_SWEEP_MAX=1000000 the largest sweep; BENCH_UPLOAD_MB=1024 the large upload (see
 * bench/upload.ts for its other knobs).
 */

import { cpus, totalmem } from 'node:os';
import autocannon, { type AutocannonResult } from 'autocannon';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/http/app.js';
import { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { scriptBeside, startPassWorker } from '../test/support/passWorker.js';
import { simulateYear } from '../test/support/yearSimulation.js';
import {
  type BenchDatabase,
  createDatabase,
  mb,
  seedTikTok,
  simulatorEnv,
  startSimulator,
} from './support.js';
import { uploadBench } from './upload.js';

interface Row {
  bench: string;
  figure: string;
  baseline: string;
  ratio: number;
  target: string;
  ok: boolean;
}

const rows: Row[] = [];
/** Each row is also logged as it is measured, so a run cut short keeps what it measured. */
const record = (row: Row) => {
  rows.push(row);
  log(
    `${row.ok ? 'ok    ' : 'MISSED'} ${row.bench}: ${row.figure} vs ${row.baseline} (ratio ${row.ratio.toFixed(2)})`,
  );
};
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : undefined;
/** `storm` selects storm-sqlite and storm-postgres. */
const wanted = (name: string) =>
  only === undefined || only.some((chosen) => name === chosen || name.startsWith(`${chosen}-`));
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

async function openApp(database: BenchDatabase, env: NodeJS.ProcessEnv = {}): Promise<SocialOAuth> {
  return SocialOAuth.open({ config: loadConfig({ ...database.env, REFRESHER_ENABLED: 'false', ...env }) });
}

/** Calls per second of `work`, run `n` times one after another after a warm-up. */
async function rate(n: number, work: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(500, n); i++) await work();
  const started = performance.now();
  for (let i = 0; i < n; i++) await work();
  return n / ((performance.now() - started) / 1000);
}

// 1. Hot path -------------------------------------------------------------------------------------
async function hotPath(kind: 'sqlite' | 'postgres'): Promise<void> {
  const database = await createDatabase(kind);
  const simulator = await startSimulator();
  const app = await openApp(database, simulatorEnv(simulator));
  try {
    const [id] = await seedTikTok(app, simulator, 1, { prefix: 'hot' });
    const n = kind === 'sqlite' ? 20_000 : 5_000;
    // Interleaved rounds, so that a hiccup of the machine hits both sides alike.
    // The plain select, compiled once: the cheapest way to run it through Kysely.
    const plainSelect = storeOf(app)
      .database.db.selectFrom('social_accounts')
      .selectAll()
      .where('id', '=', id!)
      .compile();
    let baseline = 0;
    let hot = 0;
    for (let round = 0; round < 2; round++) {
      baseline += await rate(n, () => storeOf(app).database.db.executeQuery(plainSelect));
      hot += await rate(n, () => app.tokens.ensureValidAccessToken(id!));
    }
    baseline /= 2;
    hot /= 2;
    const ratio = hot / baseline;
    record({
      bench: `hot path, ${kind}`,
      figure: `${hot.toFixed(0)} calls/s`,
      baseline: `${baseline.toFixed(0)} selects/s`,
      ratio,
      target: '>= 0.5',
      ok: ratio >= 0.5,
    });
  } finally {
    await app.close();
    await simulator.close();
    await database.drop();
  }
}

// 2. Token endpoint under autocannon -------------------------------------------------------------
async function tokenEndpoint(): Promise<void> {
  const database = await createDatabase('postgres');
  const simulator = await startSimulator();
  const app = await openApp(database, { ...simulatorEnv(simulator), LOG_LEVEL: 'silent' });
  const fastify = await buildApp({ app });
  // The baseline: a route of the same server that reads the same row and answers, nothing else.
  fastify.get<{ Params: { id: string } }>('/bench/bare/:id', async (request) => {
    const account = await storeOf(app).accounts.findById(request.params.id);
    return { ok: account !== null };
  });
  await fastify.listen({ host: '127.0.0.1', port: 0 });
  const address = fastify.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  try {
    const [id] = await seedTikTok(app, simulator, 1, { prefix: 'http' });
    const { key } = await fastify.socialOAuth.apiKeys.create('bench');
    // Interleaved rounds of 4 s, so that a slow spell of the machine hits both sides alike.
    const common = { connections: 50, duration: 4 };
    await autocannon({ url: `${base}/bench/bare/${id}`, connections: 20, duration: 2 });
    const rounds: Array<{ bare: AutocannonResult; token: AutocannonResult }> = [];
    for (let round = 0; round < 2; round++) {
      rounds.push({
        bare: await autocannon({ ...common, url: `${base}/bench/bare/${id}` }),
        token: await autocannon({
          ...common,
          url: `${base}/v1/accounts/${id}/token`,
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
        }),
      });
    }
    const meanRate = (side: 'bare' | 'token') =>
      rounds.reduce((sum, round) => sum + round[side].requests.average, 0) / rounds.length;
    const bareRate = meanRate('bare');
    const tokenRate = meanRate('token');
    const p99 = Math.max(...rounds.map((round) => round.token.latency.p99));
    const errors = rounds.reduce((sum, round) => sum + round.token.non2xx + round.token.errors, 0);
    const ratio = tokenRate / bareRate;
    record({
      bench: 'POST /v1/accounts/:id/token (autocannon, 50 conns)',
      figure: `${tokenRate.toFixed(0)} req/s, p99 ${p99} ms${errors ? `, ${errors} errors` : ''}`,
      baseline: `${bareRate.toFixed(0)} req/s bare route`,
      ratio,
      target: '>= 0.6',
      ok: ratio >= 0.6 && errors === 0,
    });
  } finally {
    await fastify.close();
    await app.close();
    await simulator.close();
    await database.drop();
  }
}

// 3. Refresh storm ------------------------------------------------------------------------------
async function refreshStorm(kind: 'sqlite' | 'postgres'): Promise<void> {
  const ACCOUNTS = Number(process.env.BENCH_STORM_ACCOUNTS ?? 10_000);
  const CALLERS = 500;
  const LATENCY = 50;
  const OUTBOUND = 100;
  const database = await createDatabase(kind);
  const simulator = await startSimulator(LATENCY);
  const app = await openApp(database, {
    ...simulatorEnv(simulator),
    OUTBOUND_CONCURRENCY: String(OUTBOUND),
    DATABASE_POOL_SIZE: '50',
    REFRESH_WAIT_TIMEOUT_MS: '600000',
  });
  try {
    log(`storm: seeding ${ACCOUNTS} expired accounts`);
    const ids = await seedTikTok(app, simulator, ACCOUNTS, { prefix: 'storm', expired: true });
    await simulator.resetCounters();
    // Every account asked for twice, in random order: the callers collide on accounts.
    const asks = [...ids, ...ids].sort(() => Math.random() - 0.5);
    let next = 0;
    let failures = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CALLERS }, async () => {
        for (let i = next++; i < asks.length; i = next++) {
          const { result } = await app.tokens.ensureValidAccessToken(asks[i]!);
          if (result && !result.success) failures++;
        }
      }),
    );
    const wall = performance.now() - started;
    const ideal = (ACCOUNTS * LATENCY) / OUTBOUND;
    const calls = await simulator.totalRefreshCalls('tiktok');
    record({
      bench: `refresh storm (${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}): ${ACCOUNTS} expired, ${CALLERS} callers, ${LATENCY} ms, outbound ${OUTBOUND}`,
      figure: `${(wall / 1000).toFixed(1)} s, ${calls} refresh calls${failures ? `, ${failures} failures` : ''}`,
      baseline: `ideal ${(ideal / 1000).toFixed(1)} s`,
      ratio: wall / ideal,
      target: `<= 1.3, calls = ${ACCOUNTS}`,
      ok: wall / ideal <= 1.3 && calls === ACCOUNTS && failures === 0,
    });
  } finally {
    await app.close();
    await simulator.close();
    await database.drop();
  }
}

// 4 and 5. Sweeps and scale-out: worker processes -----------------------------------------------
interface ChildReport {
  ms: number;
  refreshed: number;
  claimed: number;
  failed: number;
  maxRssBytes: number;
}

async function runWorkers(
  count: number,
  env: NodeJS.ProcessEnv,
): Promise<{ wall: number; reports: ChildReport[] }> {
  const workers = Array.from({ length: count }, () =>
    startPassWorker<ChildReport>(scriptBeside(import.meta.url, './refresherChild'), env),
  );
  await Promise.all(workers.map((w) => w.ready));
  const started = performance.now();
  for (const worker of workers) worker.child.stdin!.end('go\n');
  const reports = await Promise.all(workers.map((w) => w.report));
  return { wall: performance.now() - started, reports };
}

/** `total` accounts of which `due` (default 1%) are due; the rest are filler rows written by SQL, due months later. */
async function sweep(
  total: number,
  dueCount?: number,
): Promise<{ ms: number; due: number; refreshed: number; rss: number }> {
  const database = await createDatabase('postgres');
  const simulator = await startSimulator();
  const env = { ...simulatorEnv(simulator), WORKER_CONCURRENCY: '32', REFRESHER_BATCH_SIZE: '200' };
  const app = await openApp(database, env);
  try {
    const due = dueCount ?? Math.round(total / 100);
    log(`sweep ${total}: ${total - due} filler rows, ${due} due`);
    const now = Date.now();
    // Filler: active accounts not due for months, inserted by the server in one statement.
    await sql`insert into social_accounts (id, owner_id, provider, external_account_id, oauth_scopes, status,
                version, created_at, updated_at, next_refresh_at, token_issued_at)
              select 'filler-' || lpad(g::text, 8, '0'), 'bench', 'youtube', 'filler-' || g, '[]', 'active', 1,
                ${now}::bigint, ${now}::bigint, ${now}::bigint + 100 * 86400000::bigint + g, ${now}::bigint
              from generate_series(1, ${total - due}::int) g`.execute(storeOf(app).database.db);
    await sql`analyze social_accounts`.execute(storeOf(app).database.db);
    await seedTikTok(app, simulator, due, { prefix: `sweep-${total}`, dueNow: true });
    const { wall, reports } = await runWorkers(1, { ...database.env, ...env });
    return { ms: wall, due, refreshed: reports[0]!.refreshed, rss: reports[0]!.maxRssBytes };
  } finally {
    await app.close();
    await simulator.close();
    await database.drop();
  }
}

async function sweeps(): Promise<void> {
  const large = Number(process.env.BENCH_SWEEP_MAX ?? 1_000_000);
  const small = Math.round(large / 10);
  const a = await sweep(small);
  const b = await sweep(large);
  // The same work (as many due accounts as at the small size) among ten times the accounts: what
  // memory does with the number of accounts alone, apart from the ten times more refreshes above.
  const c = await sweep(large, a.due);
  const perAccountA = a.ms / a.due;
  const perAccountB = b.ms / b.due;
  record({
    bench: `sweep ${large.toLocaleString('en')} accounts, 1% due (PostgreSQL): time per due account`,
    figure: `${(b.ms / 1000).toFixed(1)} s for ${b.refreshed} (${perAccountB.toFixed(2)} ms each)`,
    baseline: `${(a.ms / 1000).toFixed(1)} s for ${a.refreshed} at ${small.toLocaleString('en')} (${perAccountA.toFixed(2)} ms each)`,
    ratio: perAccountB / perAccountA,
    target: '~1 (does not grow)',
    ok: perAccountB / perAccountA <= 1.5 && b.refreshed === b.due && a.refreshed === a.due,
  });
  record({
    bench: `sweep ${large.toLocaleString('en')}, same ${a.due} due: worker peak memory (max RSS)`,
    figure: `${mb(c.rss)} at ${large.toLocaleString('en')} accounts`,
    baseline: `${mb(a.rss)} at ${small.toLocaleString('en')}`,
    ratio: c.rss / a.rss,
    target: '~1 (does not grow with accounts)',
    ok: c.rss / a.rss <= 1.3 && c.refreshed === c.due,
  });
  record({
    bench: `sweep ${large.toLocaleString('en')}, 1% due (${b.due}): worker peak memory (max RSS)`,
    figure: mb(b.rss),
    baseline: `${mb(a.rss)} at ${small.toLocaleString('en')} (${a.due} due)`,
    ratio: b.rss / a.rss,
    target: 'informational: ten times the refreshes',
    ok: true,
  });
}

async function scaleOut(): Promise<void> {
  const ACCOUNTS = 400;
  const LATENCY = 250;
  const CONCURRENCY = 4;
  const results: Array<{ wall: number; refreshed: number; calls: number; doubles: number }> = [];
  for (const workers of [1, 2]) {
    const database = await createDatabase('postgres');
    // Platform-bound, as the issue asks: each worker keeps 4 refreshes in flight against a platform
    // answering in 250 ms (16 refreshes/s per worker), so neither the two cores nor the database is
    // the limit and the ratio shows what a second worker adds. (With 10 in flight against 50 ms, an
    // earlier version measured the machine: 128 vs 170 refreshes/s, 1.33×.)
    const simulator = await startSimulator(LATENCY);
    const env = {
      ...simulatorEnv(simulator),
      WORKER_CONCURRENCY: String(CONCURRENCY),
      REFRESHER_BATCH_SIZE: '8',
    };
    const app = await openApp(database, env);
    try {
      await seedTikTok(app, simulator, ACCOUNTS, { prefix: `scale-${workers}`, dueNow: true });
      await simulator.resetCounters();
      const { wall, reports } = await runWorkers(workers, { ...database.env, ...env });
      const doubles = await simulator.accountsRefreshedMoreThanOnce(
        'tiktok',
        Array.from({ length: ACCOUNTS }, (_, i) => `scale-${workers}-${i}`),
      );
      results.push({
        wall,
        refreshed: reports.reduce((sum, r) => sum + r.refreshed, 0),
        calls: await simulator.totalRefreshCalls('tiktok'),
        doubles,
      });
    } finally {
      await app.close();
      await simulator.close();
      await database.drop();
    }
  }
  const [one, two] = results as [(typeof results)[0], (typeof results)[0]];
  const speedup = ACCOUNTS / two.wall / (ACCOUNTS / one.wall);
  record({
    bench: `scale-out: 2 workers vs 1 on one PostgreSQL (${ACCOUNTS} due, ${LATENCY} ms platform, ${CONCURRENCY} in flight per worker)`,
    figure: `${((ACCOUNTS / two.wall) * 1000).toFixed(0)} refreshes/s, ${two.calls} calls, ${two.doubles} refreshed twice`,
    baseline: `${((ACCOUNTS / one.wall) * 1000).toFixed(0)} refreshes/s with 1 worker`,
    ratio: speedup,
    target: '~2, none twice',
    ok: speedup >= 1.7 && two.doubles === 0 && two.calls === ACCOUNTS && one.calls === ACCOUNTS,
  });
}

// 6. A year in a minute ------------------------------------------------------------------------
async function year(): Promise<void> {
  const accounts = Number(process.env.BENCH_YEAR_ACCOUNTS ?? 10_000);
  const yearStart = performance.now();
  const report = await simulateYear({
    accounts,
    stepHours: 24,
    onProgress: (day) => {
      if (day % 30 === 0) log(`year: day ${day} (${((performance.now() - yearStart) / 1000).toFixed(0)} s)`);
    },
  });
  record({
    bench: `year in a minute: ${accounts.toLocaleString('en')} accounts, 365 days (SQLite)`,
    figure: `${report.lost} lost, ${(report.wallMs / 1000).toFixed(0)} s wall`,
    baseline: '0 lost',
    ratio: report.lost,
    target: '0',
    ok: report.lost === 0,
  });
  for (const p of report.platforms) {
    record({
      bench: `year: ${p.provider} idle accounts, keep-alive calls per account-year`,
      figure: `${p.idleCallsPerAccountYear.toFixed(2)} (all accounts, on demand too: ${p.callsPerAccountYear.toFixed(2)})`,
      baseline: `least ${p.idleLeastPerAccountYear.toFixed(2)}`,
      ratio: p.idleCallsPerAccountYear / p.idleLeastPerAccountYear,
      target: '~1',
      ok: p.lost === 0 && p.idleCallsPerAccountYear / p.idleLeastPerAccountYear <= 1.25,
    });
  }
}

function printTable(): void {
  const header = ['benchmark', 'figure', 'baseline (same run)', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.bench,
    r.figure,
    r.baseline,
    r.ratio.toFixed(2),
    r.target,
    r.ok ? 'ok' : 'MISSED',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of body) console.log(line(row));
}

const started = performance.now();
console.log(
  `social-oauth bench — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mb(totalmem())} RAM, Node ${process.version}\n`,
);
const sections: Array<[string, () => Promise<void>]> = [
  ['hot', () => hotPath('sqlite').then(() => hotPath('postgres'))],
  ['http', tokenEndpoint],
  ['storm-sqlite', () => refreshStorm('sqlite')],
  ['storm-postgres', () => refreshStorm('postgres')],
  ['sweep', sweeps],
  ['scale', scaleOut],
  ['year', year],
  // Issue 13: uploads through the real platform clients (bench/upload.ts).
  ['upload', () => uploadBench(record, log)],
];
for (const [name, run] of sections) {
  if (!wanted(name)) continue;
  const sectionStart = performance.now();
  log(`${name}…`);
  try {
    await run();
  } catch (error) {
    record({
      bench: name,
      figure: `failed: ${(error as Error).message}`,
      baseline: '',
      ratio: Number.NaN,
      target: '',
      ok: false,
    });
  }
  log(`${name} done in ${((performance.now() - sectionStart) / 1000).toFixed(0)} s`);
}
printTable();
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
