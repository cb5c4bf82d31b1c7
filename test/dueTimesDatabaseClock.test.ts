import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import type { StoreDatabase } from '../src/store/database.js';
import { seedAccounts } from './chaos/chaosSupport.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

/**
 * Issue 10, item 4: due times follow the database's clock on PostgreSQL. The refresher compared
 * `next_refresh_at` with its own clock, claimed until its own `now + claim`, and planned retries
 * from its own clock: a worker running ahead took accounts before the keep-alive policy wanted
 * (spending TikTok refresh tokens for nothing) and one running behind starved them. SQLite keeps
 * the process clock (one machine, one clock), so these run on PostgreSQL only.
 */

const MINUTE = 60_000;
const SKEW = 10 * MINUTE;

/** The database server's clock, in epoch ms. */
async function databaseNow(store: StoreDatabase): Promise<number> {
  const { rows } = await sql<{
    now: number;
  }>`select cast(extract(epoch from clock_timestamp()) * 1000 as bigint) as now`.execute(store.db);
  return Number(rows[0]!.now);
}

/** Makes an account due `offsetMs` from now by the database's clock (negative: already due). */
async function dueIn(store: StoreDatabase, id: string, offsetMs: number): Promise<number> {
  const { rows } = await sql<{ next_refresh_at: number }>`
    update social_accounts
      set next_refresh_at = cast(extract(epoch from clock_timestamp()) * 1000 as bigint) + ${offsetMs}
    where id = ${id}
    returning next_refresh_at`.execute(store.db);
  return Number(rows[0]!.next_refresh_at);
}

for (const factory of DATABASES.filter((d) => d.kind === 'postgres')) {
  describe('bug: due times followed each worker’s own clock on PostgreSQL', () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    let ahead: SocialOAuth;
    let behind: SocialOAuth;
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      const options = (skew: number) => ({
        env: { ...simulatorEnv(simulator), WORKER_CONCURRENCY: '1' },
        ...(skew === 0 ? {} : { clock: { now: () => Date.now() + skew } }),
      });
      app = await openTestApp(database, options(0));
      ahead = await openTestApp(database, options(SKEW));
      behind = await openTestApp(database, options(-SKEW));
    });
    afterEach(async () => {
      simulator.faults.clear();
      await storeOf(app).database.db.deleteFrom('social_accounts').execute();
    });
    afterAll(async () => {
      await Promise.all([app?.close(), ahead?.close(), behind?.close()]);
      await simulator?.close();
      await database?.drop();
    });

    const youtube = async (n: number) => seedAccounts(app, simulator, { youtube: n }, `clock-${++counter}`);
    const schedule = async (id: string) => (await storeOf(app).accounts.scheduling.readSchedule(id))!;

    it('a worker whose clock runs 10 minutes ahead does not take an account due in 5 minutes, and takes a due one', async () => {
      const [notYet, due] = await youtube(2);
      const notYetAt = await dueIn(storeOf(app).database, notYet!.id, 5 * MINUTE);
      await dueIn(storeOf(app).database, due!.id, -MINUTE);

      expect(await ahead.createRefresher().countDue()).toBe(1);
      const summary = await ahead.createRefresher().runPass();

      expect(summary.claimed).toBe(1);
      expect(summary.outcomes.refreshed).toBe(1);
      expect(simulator.refreshCalls('youtube', due!.externalAccountId)).toBe(1);
      expect(simulator.refreshCalls('youtube', notYet!.externalAccountId)).toBe(0);
      expect((await schedule(notYet!.id)).nextRefreshAt).toBe(notYetAt);
    });

    it('a worker whose clock runs 10 minutes behind takes an account due 5 minutes ago, and not one due in 1', async () => {
      const [due, notYet] = await youtube(2);
      await dueIn(storeOf(app).database, due!.id, -5 * MINUTE);
      await dueIn(storeOf(app).database, notYet!.id, MINUTE);

      expect(await behind.createRefresher().countDue()).toBe(1);
      const summary = await behind.createRefresher().runPass();

      expect(summary.claimed).toBe(1);
      expect(summary.outcomes.refreshed).toBe(1);
      expect(simulator.refreshCalls('youtube', due!.externalAccountId)).toBe(1);
      expect(simulator.refreshCalls('youtube', notYet!.externalAccountId)).toBe(0);
    });

    for (const [name, skew] of [
      ['ahead', SKEW],
      ['behind', -SKEW],
    ] as const) {
      const worker = () => (skew > 0 ? ahead : behind);

      it(`a worker 10 minutes ${name} holds its claim for the claim's length by the database's clock`, async () => {
        const [account] = await youtube(1);
        await dueIn(storeOf(app).database, account!.id, -MINUTE);
        const before = await databaseNow(storeOf(app).database);
        const now = worker().clock.now();
        const [claim] = await storeOf(worker()).accounts.scheduling.claimDueForRefresh({
          dueBy: now,
          now,
          limit: 10,
          claimMs: 5 * MINUTE,
        });
        const after = await databaseNow(storeOf(app).database);

        expect(claim?.id).toBe(account!.id);
        const heldUntil = (await schedule(account!.id)).nextRefreshAt!;
        expect(heldUntil).toBeGreaterThanOrEqual(before + 5 * MINUTE);
        expect(heldUntil).toBeLessThanOrEqual(after + 5 * MINUTE);
      });

      it(`a worker 10 minutes ${name} plans a failed account's retry from the database's clock`, async () => {
        const [account] = await youtube(1);
        await dueIn(storeOf(app).database, account!.id, -MINUTE);
        simulator.faults.set('youtube', { errorRate: 1, status: 503 });
        const before = await databaseNow(storeOf(app).database);
        const summary = await worker().createRefresher().runPass();
        const after = await databaseNow(storeOf(app).database);

        expect(summary.outcomes.failed).toBe(1);
        const retry = await schedule(account!.id);
        expect(retry.refreshFailures).toBe(1);
        // The first retry: between half the 60 s base step and the step (jitter), counted from the
        // database's now, not 10 minutes off it.
        expect(retry.nextRefreshAt!).toBeGreaterThanOrEqual(before + 30_000);
        expect(retry.nextRefreshAt!).toBeLessThanOrEqual(after + 60_000);
      });
    }
  });
}
