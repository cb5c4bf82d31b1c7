import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import type { ProviderName } from '../src/domain/providerName.js';
import type { KeepAliveOutcome } from '../src/service/refresher.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import type { StoreDatabase } from '../src/store/database.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const DAY = 86_400_000;

/**
 * The database itself refuses one kind of write: a trigger aborts every UPDATE that counts a failed
 * keep-alive refresh (what `scheduleRetry` writes), as a full disk or a read-only replica would.
 */
async function refuseRetryWrites(store: StoreDatabase): Promise<void> {
  if (store.kind === 'postgres') {
    await sql
      .raw(
        `create function refuse_retry_writes() returns trigger language plpgsql as
         $$ begin raise exception 'the database refused the write'; end $$`,
      )
      .execute(store.db);
    await sql
      .raw(
        `create trigger refuse_retry_writes before update on social_accounts for each row
         when (new.refresh_failures > old.refresh_failures) execute function refuse_retry_writes()`,
      )
      .execute(store.db);
  } else {
    await sql
      .raw(
        `create trigger refuse_retry_writes before update of refresh_failures on social_accounts
         when new.refresh_failures > old.refresh_failures
         begin select raise(abort, 'the database refused the write'); end`,
      )
      .execute(store.db);
  }
}

async function allowRetryWrites(store: StoreDatabase): Promise<void> {
  await sql
    .raw(
      `drop trigger if exists refuse_retry_writes${store.kind === 'postgres' ? ' on social_accounts' : ''}`,
    )
    .execute(store.db);
}

/**
 * Regression (issue 10, item 8): one refused database write rejected the whole pass (`Promise.all`
 * over the lanes, `retryLater` unguarded) while its other lanes went on claiming and refreshing, and
 * the accounts it had claimed but not started were never handed back; the next pass then started
 * beside the remains of this one, over the concurrency limit.
 */
for (const factory of DATABASES) {
  describe(`bug: a database that refuses a write mid-pass let the refresher's pass outrun its concurrency (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    const clock = new ManualClock(Date.parse('2026-03-01T00:00:00Z'));
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator({ clock });
      app = await openTestApp(database, {
        clock,
        // Months pass on this clock: on PostgreSQL it stands in for the server's in due times too.
        scheduleClock: clock,
        env: {
          ...simulatorEnv(simulator),
          WORKER_CONCURRENCY: '2',
          REFRESHER_BATCH_SIZE: '4',
          REFRESH_MAX_ATTEMPTS: '2',
        },
        sleep: async (ms) => clock.advance(ms),
        random: () => 0,
      });
    });
    afterEach(async () => {
      await allowRetryWrites(storeOf(app).database).catch(() => {});
      if (storeOf(app).database.kind === 'postgres')
        await sql.raw('drop function if exists refuse_retry_writes()').execute(storeOf(app).database.db);
      simulator.faults.clear();
      simulator.resetCounters();
      await storeOf(app).database.db.deleteFrom('social_accounts').execute();
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    async function connect(provider: ProviderName) {
      const externalAccountId = `${provider}-${++counter}`;
      const now = clock.now();
      return insertSeededAccount(
        storeOf(app).accounts,
        simulator,
        provider,
        { externalAccountId, issuedAt: now },
        { now },
      );
    }

    /** A YouTube account due first (its retry write will be refused), then `tiktoks` TikTok ones. */
    async function dueAccounts(tiktoks: number) {
      const youtube = await connect('youtube');
      // Connected 3 days later: due after the YouTube account, so the refused write comes early.
      clock.advance(3 * DAY);
      const others = [];
      for (let i = 0; i < tiktoks; i++) others.push(await connect('tiktok'));
      // Every one due (TikTok 177 days after connecting, YouTube 179) and none past its platform's
      // limit (TikTok 180 days, Google 182 days unused).
      clock.advance(177.5 * DAY);
      simulator.faults.set('youtube', { errorRate: 1, status: 503 });
      await refuseRetryWrites(storeOf(app).database);
      return { youtube, tiktoks: others };
    }

    it('a pass whose retry write is refused still refreshes every other due account, and ends only then', async () => {
      const { youtube, tiktoks } = await dueAccounts(6);
      const summary = await app.createRefresher().runPass();
      expect(summary.claimed).toBe(7);
      expect(summary.outcomes).toMatchObject({ refreshed: 6, failed: 1 });
      // Nothing of the pass is still running once it has returned.
      const calls = simulator.totalRefreshCalls();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(simulator.totalRefreshCalls()).toBe(calls);
      for (const account of tiktoks) {
        expect(simulator.refreshCalls('tiktok', account.externalAccountId)).toBe(1);
        expect((await storeOf(app).accounts.findById(account.id))!.status).toBe('active');
      }
      // The refused write left the YouTube account claimed: it comes back when the claim lapses.
      const schedule = (await storeOf(app).accounts.scheduling.readSchedule(youtube.id))!;
      expect(schedule.refreshFailures).toBe(0);
      expect(schedule.nextRefreshAt).toBeGreaterThan(clock.now());
    });

    it('a pass stopped after the refused write ends when its lane has, and hands back what it had not started', async () => {
      const { youtube, tiktoks } = await dueAccounts(6);
      const stop = new AbortController();
      const seen: Array<[KeepAliveOutcome, string]> = [];
      // One lane, one batch, stopped once the YouTube account's retry write has been refused.
      // (PostgreSQL's UPDATE … RETURNING does not keep the claim's order: some TikTok accounts
      // may come before it.)
      const summary = await app.createRefresher({ concurrency: 1, batchSize: 7 }).runPass({
        signal: stop.signal,
        onAccount: (outcome, claim) => {
          seen.push([outcome, claim.id]);
          if (claim.id === youtube.id) stop.abort();
        },
      });
      expect(seen.at(-1)).toEqual(['failed', youtube.id]);
      expect(summary.claimed).toBe(7);
      const started = new Set(seen.map(([, id]) => id));
      for (const account of tiktoks) {
        const calls = simulator.refreshCalls('tiktok', account.externalAccountId);
        if (started.has(account.id)) {
          expect(calls).toBe(1);
          continue;
        }
        // Handed back: due again at once, not hidden behind a claim for REFRESHER_CLAIM_SECONDS.
        expect(calls).toBe(0);
        expect(
          (await storeOf(app).accounts.scheduling.readSchedule(account.id))!.nextRefreshAt,
        ).toBeLessThanOrEqual(clock.now());
      }
      await allowRetryWrites(storeOf(app).database);
      simulator.faults.clear();
      const next = await app.createRefresher().runPass();
      expect(next.outcomes.refreshed).toBe(7 - seen.length);
      for (const account of tiktoks) {
        expect(simulator.refreshCalls('tiktok', account.externalAccountId)).toBe(1);
      }
    });
  });
}
