import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import type { ProviderName } from '../src/domain/providerName.js';
import { warmAccessToken } from '../src/index.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { AccountRepository } from '../src/store/accountRepository.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

for (const factory of DATABASES) {
  describe(`background refresher on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    // One clock for us and the simulator: "due", "expired" and "idle" mean the same to both.
    const clock = new ManualClock(Date.parse('2026-03-01T00:00:00Z'));
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator({ clock });
      app = await openTestApp(database, {
        clock,
        // Months pass on this clock: on PostgreSQL it stands in for the server's in due times too.
        scheduleClock: clock,
        env: { ...simulatorEnv(simulator), WORKER_CONCURRENCY: '4', REFRESHER_BATCH_SIZE: '3' },
        sleep: async (ms) => clock.advance(ms),
        // No jitter: the keep-alive time is the latest safe one, so tests can name it.
        random: () => 0,
      });
    });
    afterEach(async () => {
      simulator.faults.clear();
      simulator.resetCounters();
      await storeOf(app).database.db.deleteFrom('social_accounts').execute();
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    /** An account connected just now, known to the simulator and to our store. */
    async function connect(provider: ProviderName, repository: AccountRepository = storeOf(app).accounts) {
      const externalAccountId = `${provider}-${++counter}`;
      const now = clock.now();
      const seeded = simulator.seedAccount(provider, { externalAccountId, issuedAt: now });
      return repository.insert(
        {
          ownerId: 'owner-1',
          provider,
          externalAccountId,
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
    }

    const schedule = async (id: string) => (await storeOf(app).accounts.scheduling.readSchedule(id))!;

    it('schedules a new account at its keep-alive time: 3 days before its point of no return', async () => {
      const start = clock.now();
      const instagram = await connect('instagram');
      const tiktok = await connect('tiktok');
      const youtube = await connect('youtube');
      expect((await schedule(instagram.id)).nextRefreshAt).toBe(start + 57 * DAY);
      expect((await schedule(tiktok.id)).nextRefreshAt).toBe(start + 177 * DAY);
      expect((await schedule(youtube.id)).nextRefreshAt).toBe(start + 179 * DAY);
    });

    it('a pass refreshes only the due accounts, once each, and schedules their next keep-alive', async () => {
      const instagram = await connect('instagram');
      const tiktok = await connect('tiktok');
      clock.advance(57 * DAY);
      const summary = await app.createRefresher().runPass();
      expect(summary.outcomes).toMatchObject({ refreshed: 1, failed: 0, needs_reauth: 0 });
      expect(simulator.refreshCalls('instagram', instagram.externalAccountId)).toBe(1);
      expect(simulator.refreshCalls('tiktok', tiktok.externalAccountId)).toBe(0);
      const after = (await storeOf(app).accounts.findById(instagram.id))!;
      expect(simulator.isAccessTokenValid('instagram', after.accessToken!)).toBe(true);
      expect((await schedule(instagram.id)).nextRefreshAt).toBe(clock.now() + 57 * DAY);
      const events = await storeOf(app).ledger.list({ accountId: instagram.id });
      expect(events.events.map((e) => e.type)).toEqual(['refreshed']);
      expect((await app.createRefresher().runPass()).claimed).toBe(0);
    });

    it('a refresh on demand pushes the keep-alive back: an account in use costs no extra calls', async () => {
      const youtube = await connect('youtube');
      clock.advance(100 * DAY);
      await app.tokens.ensureValidAccessToken(youtube.id);
      expect((await schedule(youtube.id)).nextRefreshAt).toBe(clock.now() + 179 * DAY);
      clock.advance(80 * DAY);
      expect((await app.createRefresher().runPass()).claimed).toBe(0);
    });

    it('a dead account is marked needs_reauth once and never retried', async () => {
      const tiktok = await connect('tiktok');
      simulator.revokeGrant('tiktok', tiktok.externalAccountId);
      clock.advance(178 * DAY);
      const first = await app.createRefresher().runPass();
      expect(first.outcomes.needs_reauth).toBe(1);
      expect((await storeOf(app).accounts.findById(tiktok.id))!.status).toBe('needs_reauth');
      expect((await schedule(tiktok.id)).nextRefreshAt).toBeNull();
      clock.advance(30 * DAY);
      expect((await app.createRefresher().runPass()).claimed).toBe(0);
      expect(simulator.refreshCalls('tiktok', tiktok.externalAccountId)).toBe(1);
    });

    it('a failing platform is retried later with growing backoff, not in a loop', async () => {
      const youtube = await connect('youtube');
      clock.advance(179 * DAY);
      simulator.faults.set('youtube', { errorRate: 1, status: 503 });
      const refresher = app.createRefresher();
      const first = await refresher.runPass();
      expect(first.outcomes.failed).toBe(1);
      const afterOne = await schedule(youtube.id);
      expect(afterOne.refreshFailures).toBe(1);
      expect(afterOne.nextRefreshAt).toBeGreaterThan(clock.now());
      // Nothing due until the backoff has passed.
      expect((await refresher.runPass()).claimed).toBe(0);
      clock.set(afterOne.nextRefreshAt!);
      await refresher.runPass();
      const afterTwo = await schedule(youtube.id);
      expect(afterTwo.refreshFailures).toBe(2);
      expect(afterTwo.nextRefreshAt! - clock.now()).toBeGreaterThan(
        afterOne.nextRefreshAt! - (clock.now() - 1),
      );
      simulator.faults.clear();
      clock.set(afterTwo.nextRefreshAt!);
      const recovered = await refresher.runPass();
      expect(recovered.outcomes.refreshed).toBe(1);
      expect((await schedule(youtube.id)).refreshFailures).toBe(0);
      expect((await storeOf(app).accounts.findById(youtube.id))!.status).toBe('active');
    });

    it('a worker that dies after claiming leaves its accounts to others once the claim lapses', async () => {
      const accounts = await Promise.all([connect('tiktok'), connect('tiktok'), connect('tiktok')]);
      clock.advance(178 * DAY);
      // A worker claims them, then dies without refreshing.
      const claimed = await storeOf(app).accounts.scheduling.claimDueForRefresh({
        dueBy: clock.now(),
        now: clock.now(),
        limit: 10,
        claimMs: 5 * MINUTE,
      });
      expect(claimed).toHaveLength(3);
      expect((await app.createRefresher().runPass()).claimed).toBe(0);
      clock.advance(5 * MINUTE);
      const summary = await app.createRefresher().runPass();
      expect(summary.outcomes.refreshed).toBe(3);
      for (const account of accounts) {
        expect(simulator.refreshCalls('tiktok', account.externalAccountId)).toBe(1);
      }
    });

    it('a claim whose account was refreshed meanwhile makes no second call (TikTok would lose it)', async () => {
      const tiktok = await connect('tiktok');
      clock.advance(178 * DAY);
      const [claim] = await storeOf(app).accounts.scheduling.claimDueForRefresh({
        dueBy: clock.now(),
        now: clock.now(),
        limit: 10,
        claimMs: 5 * MINUTE,
      });
      await app.tokens.refreshOAuthToken(tiktok.id);
      expect(await app.createRefresher().refreshClaimed(claim!)).toBe('skipped');
      expect(simulator.refreshCalls('tiktok', tiktok.externalAccountId)).toBe(1);
      expect((await storeOf(app).accounts.findById(tiktok.id))!.status).toBe('active');
    });

    it('accounts written without a schedule (before the refresher existed) are scheduled by the next pass', async () => {
      const unscheduled = new AccountRepository(storeOf(app).database, storeOf(app).cipher);
      const instagram = await connect('instagram', unscheduled);
      expect((await schedule(instagram.id)).nextRefreshAt).toBeNull();
      const summary = await app.createRefresher().runPass();
      expect(summary.scheduled).toBe(1);
      expect((await schedule(instagram.id)).nextRefreshAt).toBe(clock.now() + 57 * DAY);
    });

    it('refresh --all refreshes every active account, due or not', async () => {
      await Promise.all([connect('instagram'), connect('tiktok'), connect('youtube'), connect('tiktok')]);
      clock.advance(DAY + MINUTE);
      const summary = await app.createRefresher().runPass({ everyActive: true });
      expect(summary.outcomes.refreshed).toBe(4);
      expect(simulator.totalRefreshCalls()).toBe(4);
    });

    it('warm-up: a token for a post tomorrow is refreshed only when a refresh can last until then', async () => {
      const tiktok = await connect('tiktok');
      const postAt = clock.now() + DAY;
      const early = await warmAccessToken(app, tiktok.id, postAt);
      expect(early).toMatchObject({ status: 'too_early', refreshed: false });
      expect(early.askAfter).toBe(postAt + 5 * MINUTE - 2 * HOUR + MINUTE);
      clock.set(early.askAfter!);
      const warmed = await warmAccessToken(app, tiktok.id, postAt);
      expect(warmed).toMatchObject({ status: 'ready', refreshed: true });
      expect(warmed.account.expiresAt).toBeGreaterThan(postAt);
      expect((await warmAccessToken(app, tiktok.id, postAt)).refreshed).toBe(false);
      expect(simulator.refreshCalls('tiktok', tiktok.externalAccountId)).toBe(1);
    });
  });
}
