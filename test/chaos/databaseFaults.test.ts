import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { seededRandom } from '../../src/simulator/faults.js';
import { type ProviderSimulator, startProviderSimulator } from '../../src/simulator/simulator.js';
import { reservePort } from '../http/harness.js';
import { openTestApp, testEnv } from '../support/app.js';
import type { TestDatabase } from '../support/databases.js';
import { SIM_CLIENTS, simulatorEnv } from '../support/simulator.js';
import {
  auditAccounts,
  type CliProcess,
  createApiKey,
  type HealthSample,
  seedAccounts,
  sleep,
  spawnCli,
  startStorm,
  stopGracefully,
  waitHealthy,
  watchHealth,
  writeResult,
} from './chaosSupport.js';
import { type PrivatePostgres, startPrivatePostgres } from './privatePostgres.js';

/**
 * Database faults during a refresh storm: a PostgreSQL server stopped and started again, and a full
 * disk under the SQLite default. The service (the built CLI's `serve`, with its refresher) must
 * report itself unhealthy at GET /health while the database cannot do its work, recover by itself
 * without a restart, and lose no token: afterwards every account is active with tokens the
 * simulator accepts.
 *
 * The PostgreSQL server here is a private one (initdb + pg_ctl on a free port), never the machine's
 * shared server that other test files use at the same time.
 */
const PLAN = { tiktok: 30, youtube: 12, instagram: 6 };
const SERVICE_ENV = {
  PROVIDER_TIMEOUT_MS: '1500',
  REFRESH_LEASE_SECONDS: '8',
  REFRESH_WAIT_TIMEOUT_MS: '5000',
  REFRESH_THRESHOLD_SECONDS: '3',
  REFRESHER_INTERVAL_SECONDS: '1',
  KEEPALIVE_JITTER_SECONDS: '0',
  SHUTDOWN_TIMEOUT_MS: '3000',
};

async function startSimulator(): Promise<ProviderSimulator> {
  return startProviderSimulator({
    port: 0,
    clients: SIM_CLIENTS,
    latencyMs: 20,
    lifetimes: { tiktokAccessSeconds: 6, googleAccessSeconds: 6 },
  });
}

/** Storm + health watch around `fault`; returns what was seen, after the audit. */
async function stormThrough(
  database: TestDatabase,
  simulator: ProviderSimulator,
  fault: (health: () => HealthSample[]) => Promise<Record<string, unknown>>,
) {
  const app: SocialOAuth = await openTestApp(database, {
    env: { ...simulatorEnv(simulator), ...SERVICE_ENV, REFRESH_WAIT_TIMEOUT_MS: '30000' },
  });
  const processes: CliProcess[] = [];
  try {
    const accounts = await seedAccounts(app, simulator, PLAN, `dbfault-${database.kind}`);
    const apiKey = await createApiKey(app, 'db-faults');
    const port = await reservePort();
    const env = testEnv(database, { ...simulatorEnv(simulator), ...SERVICE_ENV });
    const serve = spawnCli(['serve'], { ...env, HOST: '127.0.0.1', PORT: String(port) });
    processes.push(serve);
    await waitHealthy(port, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${serve.output()}`);
    });
    const storm = startStorm({
      ports: () => [port],
      accounts,
      apiKey,
      simulator,
      loops: 8,
      random: seededRandom(5),
    });
    const health = watchHealth(port);
    await sleep(3000);
    const faultReport = await fault(() => health.samples);
    await sleep(4000);
    const counts = await storm.stop();
    await health.stop();
    const stillRunning = serve.child.exitCode === null && serve.child.signalCode === null;
    await stopGracefully(serve);
    const audit = await auditAccounts(
      app,
      simulator,
      accounts.map((a) => a.id),
    );
    return { counts, health: health.samples, stillRunning, audit, faultReport, output: serve.output() };
  } finally {
    await Promise.all(processes.map((p) => stopGracefully(p, 3000)));
    await app.close();
  }
}

/** The first unhealthy sample, and the first healthy one after it. */
function unhealthySpan(samples: HealthSample[]): { from: number; to: number } | null {
  const first = samples.findIndex((s) => s.status !== 200);
  if (first < 0) return null;
  const back = samples.findIndex((s, i) => i > first && s.status === 200);
  return { from: samples[first]!.atMs, to: back < 0 ? Number.NaN : samples[back]!.atMs };
}

describe('database faults during a refresh storm', () => {
  let simulator: ProviderSimulator | null = null;
  let privatePostgres: PrivatePostgres | null = null;
  let tmpfs: string | null = null;
  afterAll(async () => {
    await simulator?.close();
    privatePostgres?.destroy();
    if (tmpfs) {
      execFileSync('umount', [tmpfs]);
      rmSync(tmpfs, { recursive: true, force: true });
    }
  });

  it('PostgreSQL stopped and started again: /health goes 503 and back to 200 by itself, no token lost', async (context) => {
    privatePostgres = await startPrivatePostgres();
    if (privatePostgres === null) {
      if (process.env.CI === 'true') throw new Error('a private PostgreSQL server is required in CI');
      context.skip();
      return;
    }
    simulator = await startSimulator();
    const pg = privatePostgres;
    const dataDir = mkdtempSync(join(tmpdir(), 'social-oauth-test-'));
    const database: TestDatabase = {
      kind: 'postgres',
      databaseUrl: pg.url,
      dataDir,
      drop: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
    const run = await stormThrough(database, simulator, async (health) => {
      const before = health().length;
      const stoppedAt = Date.now();
      pg.stop();
      // Down long enough for every part of the service to notice, as in a failover.
      await sleep(2500);
      pg.start();
      const downMs = Date.now() - stoppedAt;
      // Recovery by itself: the service is not restarted; wait for /health to say ok again.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && health().at(-1)?.status !== 200) await sleep(100);
      return { downMs, samplesBefore: before };
    });
    await database.drop();
    const span = unhealthySpan(run.health);
    const result = {
      ...run,
      output: undefined,
      unhealthy: span,
      healthSamples: run.health.length,
      health: undefined,
    };
    writeResult('chaos-postgres-restart', result);
    console.log(`[database faults: postgres restart] ${JSON.stringify(result)}`);

    expect(span, 'never reported unhealthy').not.toBeNull();
    expect(Number.isNaN(span!.to), 'never healthy again').toBe(false);
    expect(run.health.at(-1)?.status).toBe(200);
    expect(run.stillRunning, run.output).toBe(true);
    expect(run.counts.invalidServed).toBe(0);
    expect(run.audit.lost, JSON.stringify(run.audit.lost)).toEqual([]);
    expect(run.audit.activeButInvalid).toEqual([]);
  }, 120_000);

  it('SQLite on a full disk: /health goes 503 and back to 200 when space returns, no token lost', async (context) => {
    tmpfs = mkdtempSync(join(tmpdir(), 'social-oauth-fulldisk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', tmpfs], { stdio: 'pipe' });
    } catch {
      rmSync(tmpfs, { recursive: true, force: true });
      tmpfs = null;
      // Without mount (no CAP_SYS_ADMIN) there is no honest full disk to make here.
      console.warn('[database faults] cannot mount a tmpfs here: the SQLite full-disk test is SKIPPED');
      context.skip();
      return;
    }
    simulator ??= await startSimulator();
    const disk = tmpfs;
    const database: TestDatabase = {
      kind: 'sqlite',
      databaseUrl: undefined,
      dataDir: disk,
      drop: async () => {},
    };
    const filler = join(disk, 'filler');
    const run = await stormThrough(database, simulator, async (health) => {
      // Fill every last byte, as a runaway log would.
      const fd = openSync(filler, 'w');
      const chunk = Buffer.alloc(64 * 1024, 1);
      let filled = 0;
      try {
        for (;;) filled += writeSync(fd, chunk);
      } catch {
        // ENOSPC: the disk is full
      }
      for (const size of [4096, 512, 1]) {
        try {
          for (;;) filled += writeSync(fd, chunk.subarray(0, size));
        } catch {
          // full at this granularity
        }
      }
      closeSync(fd);
      const fullAt = Date.now();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && health().at(-1)?.status === 200) await sleep(100);
      const sawUnhealthy = health().at(-1)?.status !== 200;
      // The storm goes on against a full disk for a while.
      await sleep(3000);
      unlinkSync(filler);
      const freedAt = Date.now();
      const recoverBy = Date.now() + 20_000;
      while (Date.now() < recoverBy && health().at(-1)?.status !== 200) await sleep(100);
      return { filledBytes: filled, fullMs: freedAt - fullAt, sawUnhealthy };
    });
    const span = unhealthySpan(run.health);
    const result = {
      ...run,
      output: undefined,
      unhealthy: span,
      healthSamples: run.health.length,
      health: undefined,
    };
    writeResult('chaos-sqlite-full-disk', result);
    console.log(`[database faults: sqlite full disk] ${JSON.stringify(result)}`);

    expect(span, 'never reported unhealthy').not.toBeNull();
    expect(Number.isNaN(span!.to), 'never healthy again').toBe(false);
    expect(run.health.at(-1)?.status).toBe(200);
    expect(run.stillRunning, run.output).toBe(true);
    expect(run.counts.invalidServed).toBe(0);
    expect(run.audit.lost, JSON.stringify(run.audit.lost)).toEqual([]);
    expect(run.audit.activeButInvalid).toEqual([]);
  }, 120_000);
});
