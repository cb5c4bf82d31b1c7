import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/domain/logger.js';
import { CLOCK_SKEW_WARNING_MS } from '../src/service/clockSkew.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import type { StoreDatabase } from '../src/store/database.js';
import { seedAccounts } from './chaos/chaosSupport.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

/**
 * Issue 10, item 4. A refresher holding freshly rotated TikTok tokens discarded them when, while
 * its save was held up past its lease, another process spent the old refresh token, got
 * invalid_grant and set needs_reauth: the holder's tokens were the living grant, and were thrown
 * away. Leases also followed each process's own clock, so a process running ahead took live leases.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A real refusal of refresh-token writes (a trigger), as in test/chaos/outageLongerThanLease.test.ts. */
async function refuseTokenWrites(store: StoreDatabase, refuse: boolean): Promise<void> {
  if (store.kind === 'postgres') {
    if (!refuse)
      return void (await sql`drop trigger refuse_token_writes on social_accounts`.execute(store.db));
    await sql`create or replace function refuse_token_writes() returns trigger language plpgsql as $$
      begin raise exception 'canceling statement due to lock timeout'; end $$`.execute(store.db);
    await sql`create trigger refuse_token_writes before update of oauth_refresh_token on social_accounts
      for each row when (new.oauth_refresh_token is distinct from old.oauth_refresh_token)
      execute function refuse_token_writes()`.execute(store.db);
  } else {
    if (!refuse) return void (await sql`drop trigger refuse_token_writes`.execute(store.db));
    await sql`create trigger refuse_token_writes before update of oauth_refresh_token on social_accounts
      when new.oauth_refresh_token is not old.oauth_refresh_token
      begin select raise(abort, 'database is locked'); end`.execute(store.db);
  }
}

function recordingLogger(): Logger & { warnings: Array<{ obj: object; msg?: string }> } {
  const warnings: Array<{ obj: object; msg?: string }> = [];
  return {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (obj, msg) => warnings.push({ obj, msg }),
    error: () => {},
  };
}

for (const factory of DATABASES) {
  describe(`bug: a holder of valid rotated tokens discarded them after another process flagged the account (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let holder: SocialOAuth;
    let other: SocialOAuth;
    // The smallest lease the configuration allows with a 500 ms platform timeout: 6 s.
    const env = () => ({
      ...simulatorEnv(simulator),
      PROVIDER_TIMEOUT_MS: '500',
      REFRESH_LEASE_SECONDS: '6',
    });
    let stall: (() => Promise<void>) | null = null;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      holder = await openTestApp(database, {
        env: env(),
        // The holder's wait between save attempts is where the stall happens.
        sleep: async (ms) => {
          const run = stall;
          stall = null;
          if (run) await run();
          else await sleep(ms);
        },
      });
      other = await openTestApp(database, { env: env() });
    });
    afterAll(async () => {
      await holder?.close();
      await other?.close();
      await simulator?.close();
      await database?.drop();
    });

    it('stores its tokens and makes the account active again (with a ledger row)', async () => {
      const [account] = await seedAccounts(holder, simulator, { tiktok: 1 }, 'living-grant');
      // The other process does not see the holder's refresh journal (it runs on another machine;
      // here the journal folder's name is taken by a file): only the database connects them.
      const journal = join(database.dataDir, 'refresh-journal');
      rmSync(journal, { recursive: true, force: true });
      writeFileSync(journal, 'not a folder');
      await refuseTokenWrites(storeOf(holder).database, true);
      const told: string[] = [];
      holder.tokens.onEvent((event) =>
        told.push(`${event.type}${event.detail?.reactivated ? ':reactivated' : ''}`),
      );
      stall = async () => {
        // The holder stalls past its lease; meanwhile another process refreshes with the old
        // refresh token (already spent by the holder's refresh) and flags the account.
        await refuseTokenWrites(storeOf(holder).database, false);
        await sleep(6_500);
        const flagged = await other.tokens.refreshOAuthToken(account!.id);
        expect(flagged.result).toMatchObject({ success: false, providerErrorCode: 'invalid_grant' });
        expect(flagged.account.status).toBe('needs_reauth');
      };
      const { account: after, result } = await holder.tokens.refreshOAuthToken(account!.id);

      expect(result).toMatchObject({ success: true });
      expect(after.status).toBe('active');
      expect(simulator.isRefreshTokenValid('tiktok', after.refreshToken!)).toBe(true);
      expect(simulator.isAccessTokenValid('tiktok', after.accessToken!)).toBe(true);
      const stored = (await storeOf(other).accounts.findById(account!.id))!;
      expect(stored.status).toBe('active');
      expect(stored.refreshToken).toBe(after.refreshToken);
      const events = (await storeOf(holder).ledger.list({ accountId: account!.id })).events;
      expect(events.map((e) => e.type)).toEqual(['needs_reauth', 'refreshed']);
      expect(events[1]!.detail).toMatchObject({ reactivated: true, previousStatus: 'needs_reauth' });
      expect(told).toContain('refreshed:reactivated');
      // The keep-alive schedule is back too: the account is refreshed again in time.
      expect(
        (await storeOf(holder).accounts.scheduling.readSchedule(account!.id))?.nextRefreshAt,
      ).not.toBeNull();
      rmSync(journal, { force: true });
    }, 30_000);

    it('does not bring back an account that was reconnected or revoked meanwhile', async () => {
      const [account] = await seedAccounts(holder, simulator, { tiktok: 1 }, 'revoked-meanwhile');
      await refuseTokenWrites(storeOf(holder).database, true);
      stall = async () => {
        await refuseTokenWrites(storeOf(holder).database, false);
        await storeOf(other).accounts.setStatus(account!.id, 'revoked', 'user revoked', Date.now());
      };
      const { account: after } = await holder.tokens.refreshOAuthToken(account!.id);
      expect(after.status).toBe('revoked');
      expect((await storeOf(other).accounts.findById(account!.id))!.refreshToken).toBeNull();
    });
  });

  describe(`leases follow the database's clock where processes may disagree (${factory.kind})`, () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await factory.create();
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('warns at start when this process clock is off the database clock by more than a few seconds', async () => {
      const ahead = recordingLogger();
      const aheadApp = await openTestApp(database, {
        logger: ahead,
        clock: { now: () => Date.now() + 10 * 60_000 },
      });
      const inTime = recordingLogger();
      const inTimeApp = await openTestApp(database, { logger: inTime });
      try {
        const skew = ahead.warnings.find((w) => 'skewMs' in w.obj);
        expect(skew?.msg).toMatch(/ahead of the database/);
        expect((skew!.obj as { skewMs: number }).skewMs).toBeGreaterThan(10 * 60_000 - CLOCK_SKEW_WARNING_MS);
        expect(inTime.warnings.filter((w) => 'skewMs' in w.obj)).toEqual([]);
      } finally {
        await aheadApp.close();
        await inTimeApp.close();
      }
    });

    it.runIf(factory.kind === 'postgres')(
      'a process whose clock runs ten minutes ahead does not take a live lease',
      async () => {
        const app = await openTestApp(database);
        const ahead = await openTestApp(database, { clock: { now: () => Date.now() + 10 * 60_000 } });
        try {
          const account = await storeOf(app).accounts.insert(
            {
              ownerId: 'o',
              provider: 'tiktok',
              externalAccountId: 'clock-ahead',
              displayName: null,
              accessToken: 'a',
              refreshToken: 'r',
              expiresAt: null,
              refreshTokenExpiresAt: null,
              scopes: [],
              tokenIssuedAt: null,
            },
            Date.now(),
          );
          expect(
            await storeOf(app).accounts.tryAcquireRefreshLease(
              account.id,
              'in-time',
              app.clock.now(),
              60_000,
            ),
          ).not.toBeNull();
          expect(
            await storeOf(ahead).accounts.tryAcquireRefreshLease(
              account.id,
              'ahead',
              ahead.clock.now(),
              60_000,
            ),
          ).toBeNull();
          expect(
            await storeOf(ahead).accounts.tryRenewRefreshLease(
              account.id,
              'in-time',
              ahead.clock.now(),
              60_000,
            ),
          ).toBe(true);
        } finally {
          await app.close();
          await ahead.close();
        }
      },
    );
  });
}
