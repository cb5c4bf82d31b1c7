import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PassSummary } from '../src/service/refresher.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { scriptBeside, startPassWorker } from './support/passWorker.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const WORKERS = 3;
const ACCOUNTS = 300;
const DAY = 86_400_000;

function startWorker(env: NodeJS.ProcessEnv) {
  return startPassWorker<PassSummary & { pid: number }>(
    scriptBeside(import.meta.url, './support/refresherWorker'),
    env,
  );
}

// Locking across processes is what PostgreSQL deployments scale out with; SQLite has one writer.
for (const factory of DATABASES.filter((d) => d.kind === 'postgres')) {
  describe('several workers on one PostgreSQL', () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      // Latency keeps refreshes in flight while other workers claim: the window a race would need.
      simulator = await startTestSimulator({ latencyMs: 20 });
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    it(`${WORKERS} workers share ${ACCOUNTS} due TikTok accounts: each refreshed exactly once, none lost`, async () => {
      const now = Date.now();
      const ids: string[] = [];
      for (let i = 0; i < ACCOUNTS; i++) {
        // Connected 179 days ago: the rotating refresh token dies tomorrow, so it is due now.
        const seeded = simulator.seedAccount('tiktok', {
          externalAccountId: `fleet-${i}`,
          issuedAt: now - 179 * DAY,
        });
        const account = await storeOf(app).accounts.insert(
          {
            ownerId: 'owner-fleet',
            provider: 'tiktok',
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
        );
        ids.push(account.id);
      }
      expect(await storeOf(app).accounts.scheduling.countDueForRefresh(Date.now())).toBe(ACCOUNTS);

      const env = testEnv(database, {
        ...simulatorEnv(simulator),
        WORKER_CONCURRENCY: '8',
        REFRESHER_BATCH_SIZE: '10',
      });
      const workers = Array.from({ length: WORKERS }, () => startWorker(env));
      await Promise.all(workers.map((w) => w.ready));
      for (const worker of workers) worker.child.stdin!.end('go\n');
      const reports = await Promise.all(workers.map((w) => w.report));

      const refreshed = reports.map((r) => r.outcomes.refreshed);
      expect(refreshed.reduce((a, b) => a + b, 0)).toBe(ACCOUNTS);
      expect(reports.map((r) => r.outcomes.failed + r.outcomes.needs_reauth)).toEqual(reports.map(() => 0));
      // The work was shared, not done by whichever worker came first.
      expect(refreshed.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
      expect(simulator.totalRefreshCalls('tiktok')).toBe(ACCOUNTS);
      for (let i = 0; i < ACCOUNTS; i++) expect(simulator.refreshCalls('tiktok', `fleet-${i}`)).toBe(1);
      for (const id of ids) {
        const account = (await storeOf(app).accounts.findById(id))!;
        expect(account.status).toBe('active');
        expect(simulator.isRefreshTokenValid('tiktok', account.refreshToken!)).toBe(true);
      }
      expect(await storeOf(app).accounts.scheduling.countDueForRefresh(Date.now())).toBe(0);
    }, 120_000);
  });
}
