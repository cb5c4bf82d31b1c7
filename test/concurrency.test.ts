import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const PROCESSES = 4;
const CALLERS_PER_PROCESS = 25;
const ACCOUNTS = 200;

interface WorkerReport {
  refreshedHere: number;
  failures: number;
  failureReasons: Record<string, number>;
  tokens: Record<string, string>;
  retried: Record<string, number>;
  pid: number;
}

function startWorker(env: NodeJS.ProcessEnv): { child: ChildProcess; report: Promise<WorkerReport> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/ensureWorker.ts'], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const report = new Promise<WorkerReport>((resolve, reject) => {
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`worker exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as WorkerReport);
    });
  });
  return { child, report };
}

for (const factory of DATABASES) {
  describe(`exactly one refresh per expiry across processes on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      // Latency widens the window in which racing processes could both refresh.
      simulator = await startTestSimulator({ latencyMs: 30 });
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    it(`${PROCESSES} processes × ${CALLERS_PER_PROCESS} callers, ${ACCOUNTS} expired TikTok accounts: ${ACCOUNTS} refresh calls, all active`, async () => {
      const ids: string[] = [];
      const now = Date.now();
      for (let i = 0; i < ACCOUNTS; i++) {
        const account = await insertSeededAccount(
          storeOf(app).accounts,
          simulator,
          'tiktok',
          { externalAccountId: `race-${i}`, accessExpiresAt: now - 1000 },
          { ownerId: 'owner-race', now },
        );
        ids.push(account.id);
      }

      const env = {
        // A timed-out TikTok refresh that the platform did process leaves a spent token behind
        // (a real hazard, counted in the ledger); under two loaded cores a short timeout would
        // cause exactly that, and this test is about the lease, so give requests ample time.
        ...testEnv(database, {
          ...simulatorEnv(simulator),
          PROVIDER_TIMEOUT_MS: '30000',
          REFRESH_LEASE_SECONDS: '120',
        }),
        ACCOUNT_IDS: JSON.stringify(ids),
        CALLERS: String(CALLERS_PER_PROCESS),
      };
      const workers = Array.from({ length: PROCESSES }, () => startWorker(env));
      // Let every child load and open its database before releasing them all at once.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      for (const worker of workers) worker.child.stdin!.end('go\n');
      const reports = await Promise.all(workers.map((w) => w.report));

      const doubled = ids
        .map((_, i) => `race-${i}`)
        .filter((ext) => simulator.refreshCalls('tiktok', ext) !== 1);
      if (doubled.length > 0) {
        console.error(
          'accounts refreshed more than once:',
          doubled,
          JSON.stringify(
            simulator.refreshLog('tiktok').filter((e) => doubled.includes(e.externalAccountId ?? '')),
          ),
        );
        console.error(
          'retries per process:',
          reports.map((r) => ({ pid: r.pid, retried: r.retried, failureReasons: r.failureReasons })),
        );
      }
      expect(simulator.totalRefreshCalls('tiktok')).toBe(ACCOUNTS);
      for (let i = 0; i < ACCOUNTS; i++) expect(simulator.refreshCalls('tiktok', `race-${i}`)).toBe(1);
      expect(reports.reduce((sum, r) => sum + r.refreshedHere, 0)).toBe(ACCOUNTS);
      expect(reports.map((r) => r.failures)).toEqual(Array(PROCESSES).fill(0));

      for (const id of ids) {
        const account = (await storeOf(app).accounts.findById(id))!;
        expect(account.status).toBe('active');
        expect(simulator.isAccessTokenValid('tiktok', account.accessToken!)).toBe(true);
        // Every process ended up holding the token that is stored.
        for (const report of reports) expect(report.tokens[id]).toBe(account.accessToken);
      }
    }, 120_000);
  });
}
