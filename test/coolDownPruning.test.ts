import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

/**
 * Issue 10, item 14: the per-process cool-down map (callers asking again after a failed refresh get
 * the failure, not a new call) was never pruned: every account that ever failed stayed in memory
 * for the life of the process. In memory only, so one database is enough.
 */
describe('bug: the cool-down map was never pruned', () => {
  let database: TestDatabase;
  let simulator: ProviderSimulator;
  let app: SocialOAuth;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    database = await DATABASES[0]!.create();
    simulator = await startTestSimulator({ clock });
    app = await openTestApp(database, {
      clock,
      env: { ...simulatorEnv(simulator), REFRESH_MAX_ATTEMPTS: '1' },
      sleep: async (ms) => clock.advance(ms),
    });
  });
  afterAll(async () => {
    await app?.close();
    await simulator?.close();
    await database?.drop();
  });

  async function failingRefresh(name: string) {
    const account = await insertSeededAccount(
      storeOf(app).accounts,
      simulator,
      'youtube',
      { externalAccountId: name, accessExpiresAt: clock.now() + 60_000 },
      { now: clock.now() },
    );
    simulator.faults.set('youtube', { failNext: 1, status: 503, routes: ['refresh'] });
    const { result } = await app.tokens.ensureValidAccessToken(account.id);
    expect(result).toMatchObject({ success: false, reason: 'provider_error' });
  }

  it('forgets accounts whose cool-down ended long ago, and keeps the recent ones', async () => {
    for (let i = 0; i < 20; i++) await failingRefresh(`cooling-${i}`);
    expect(app.tokens.coolDownCount).toBe(20);
    // Their backoff (5 s for a first failure) ended long ago: a new failure elsewhere sweeps them.
    clock.advance(15 * 60_000);
    await failingRefresh('cooling-late');
    expect(app.tokens.coolDownCount).toBe(1);
  });
});
