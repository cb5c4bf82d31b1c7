import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import type { StoreDatabase } from '../../src/store/database.js';
import { openTestApp } from '../support/app.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { simulatorEnv, startTestSimulator } from '../support/simulator.js';
import { seedAccounts } from './chaosSupport.js';

/**
 * Issue 10, item 2: with the database refusing token writes for longer than the refresh lease, a
 * rotated TikTok refresh token was lost: the commit was given up when the lease ran out, the lease
 * released cleanly, no ledger row written, and the invalid_grant that followed was not flagged.
 *
 * The database fault is real: a trigger refuses every write of a refresh token (as a full disk, a
 * read-only replica after a failover or a lost permission would), while the rest of the database
 * keeps working. Time passes through an injected clock, so a 60-second lease takes no real time.
 */

async function refuseTokenWrites(store: StoreDatabase): Promise<void> {
  if (store.kind === 'postgres') {
    await sql`create or replace function refuse_token_writes() returns trigger language plpgsql as $$
      begin raise exception 'could not extend file: No space left on device'; end $$`.execute(store.db);
    await sql`create trigger refuse_token_writes before update of oauth_refresh_token on social_accounts
      for each row when (new.oauth_refresh_token is distinct from old.oauth_refresh_token)
      execute function refuse_token_writes()`.execute(store.db);
  } else {
    await sql`create trigger refuse_token_writes before update of oauth_refresh_token on social_accounts
      when new.oauth_refresh_token is not old.oauth_refresh_token
      begin select raise(abort, 'database or disk is full'); end`.execute(store.db);
  }
}

/** The ledger refuses rows too: only the lease can carry the news. */
async function refuseLedgerWrites(store: StoreDatabase): Promise<void> {
  if (store.kind === 'postgres') {
    await sql`create trigger refuse_ledger_writes before insert on oauth_events
      for each row execute function refuse_token_writes()`.execute(store.db);
  } else {
    await sql`create trigger refuse_ledger_writes before insert on oauth_events
      begin select raise(abort, 'database or disk is full'); end`.execute(store.db);
  }
}

async function acceptLedgerWrites(store: StoreDatabase): Promise<void> {
  if (store.kind === 'postgres')
    await sql`drop trigger refuse_ledger_writes on oauth_events`.execute(store.db);
  else await sql`drop trigger refuse_ledger_writes`.execute(store.db);
}

async function acceptTokenWrites(store: StoreDatabase): Promise<void> {
  if (store.kind === 'postgres')
    await sql`drop trigger refuse_token_writes on social_accounts`.execute(store.db);
  else await sql`drop trigger refuse_token_writes`.execute(store.db);
}

/**
 * Lets `ms` pass for the refresh lease. Leases follow the injected clock on SQLite and the
 * database's own clock on PostgreSQL (issue 10, item 4), where the lease's end is moved back instead.
 */
async function passLeaseTime(app: SocialOAuth, accountId: string, ms: number): Promise<void> {
  offsetBy(ms);
  if (storeOf(app).database.kind === 'postgres') {
    await sql`update social_accounts set refresh_lease_until = refresh_lease_until - ${ms} where id = ${accountId}`.execute(
      storeOf(app).database.db,
    );
  }
}

let offsetBy: (ms: number) => void = () => {};

for (const factory of DATABASES) {
  describe(`bug: a save refused for longer than the lease lost the rotated TikTok token (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;
    let offset = 0;
    const clock = { now: () => Date.now() + offset };
    offsetBy = (ms) => {
      offset += ms;
    };
    const open = () =>
      openTestApp(database, {
        clock,
        // Sleeping moves the clock on: the outage outlasts the 60-second lease in no real time.
        sleep: async (ms) => {
          offset += ms;
        },
        env: { ...simulatorEnv(simulator), REFRESH_LEASE_SECONDS: '60' },
      });

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      app = await open();
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    const journalDir = () => join(database.dataDir, 'refresh-journal');
    const journalFiles = () => {
      try {
        return readdirSync(journalDir()).filter((name) => name.endsWith('.json'));
      } catch {
        return [];
      }
    };

    it('keeps the tokens in an encrypted journal and stores them when the process starts again', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'refused-restart');
      await refuseTokenWrites(storeOf(app).database);
      const started = clock.now();
      try {
        await expect(app.tokens.refreshOAuthToken(account!.id)).rejects.toThrow(/space|full/);
      } finally {
        await acceptTokenWrites(storeOf(app).database);
      }
      // Saves were retried until the lease ran out (the refusal outlasted it: the trigger stayed),
      // and the platform did rotate: the stored token is spent.
      expect(clock.now() - started).toBeGreaterThan(55_000);
      expect(simulator.refreshCalls('tiktok', account!.externalAccountId)).toBe(1);
      const stored = (await storeOf(app).accounts.findById(account!.id))!;
      expect(simulator.isRefreshTokenValid('tiktok', stored.refreshToken!)).toBe(false);
      // Flagged where it can be: the ledger took the row the token column refused.
      const failed = (await storeOf(app).ledger.list({ accountId: account!.id, type: 'refresh_failed' }))
        .events;
      expect(failed.at(-1)?.detail).toMatchObject({ unsavedTokens: true, journaled: true });
      // The journal holds the new tokens, encrypted: no token in the file in clear.
      expect(journalFiles()).toHaveLength(1);
      const text = readFileSync(join(journalDir(), journalFiles()[0]!), 'utf8');
      expect(text).not.toContain(stored.refreshToken!);
      expect(text).not.toContain('"refreshToken"');

      // A restart: the journal is replayed before anything else.
      await app.close();
      app = await open();
      const after = (await storeOf(app).accounts.findById(account!.id))!;
      expect(after.status).toBe('active');
      expect(simulator.isRefreshTokenValid('tiktok', after.refreshToken!)).toBe(true);
      expect(simulator.isAccessTokenValid('tiktok', after.accessToken!)).toBe(true);
      const refreshed = (await storeOf(app).ledger.list({ accountId: account!.id, type: 'refreshed' }))
        .events;
      expect(refreshed.at(-1)?.detail).toMatchObject({ fromJournal: true });
      expect(journalFiles()).toHaveLength(0);
      // And it goes on: the next refresh spends the token the journal brought back.
      const next = await app.tokens.refreshOAuthToken(account!.id);
      expect(next.result).toMatchObject({ success: true });
      expect(simulator.isRefreshTokenValid('tiktok', next.account.refreshToken!)).toBe(true);
    });

    it('stores the journaled tokens before the next refresh of the account, without calling the platform', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'refused-next');
      await refuseTokenWrites(storeOf(app).database);
      try {
        await expect(app.tokens.refreshOAuthToken(account!.id)).rejects.toThrow(/space|full/);
      } finally {
        await acceptTokenWrites(storeOf(app).database);
      }
      // The lease was left to lapse (so that another process would know): it has by now.
      await passLeaseTime(app, account!.id, 61_000);
      const { account: after, result } = await app.tokens.refreshOAuthToken(account!.id);
      expect(result).toMatchObject({ success: true });
      expect(after.status).toBe('active');
      expect(simulator.refreshCalls('tiktok', account!.externalAccountId)).toBe(1);
      expect(simulator.isRefreshTokenValid('tiktok', after.refreshToken!)).toBe(true);
      expect(journalFiles()).toHaveLength(0);
    });

    it('where the loss cannot be avoided (no journal, no ledger), the next invalid_grant is flagged', async () => {
      const [account] = await seedAccounts(app, simulator, { tiktok: 1 }, 'refused-unavoidable');
      // The journal cannot be written either: its folder's name is taken by a file.
      rmSync(journalDir(), { recursive: true, force: true });
      writeFileSync(journalDir(), 'not a folder');
      await refuseTokenWrites(storeOf(app).database);
      await refuseLedgerWrites(storeOf(app).database);
      try {
        await expect(app.tokens.refreshOAuthToken(account!.id)).rejects.toThrow(/space|full/);
      } finally {
        await acceptLedgerWrites(storeOf(app).database);
        await acceptTokenWrites(storeOf(app).database);
      }
      // The lease was not released: whoever refreshes next (here, a process started after the
      // outage) knows that a refresh may have spent the token.
      await passLeaseTime(app, account!.id, 61_000);
      const other = await open();
      try {
        const { account: after, result } = await other.tokens.refreshOAuthToken(account!.id);
        expect(result).toMatchObject({ success: false, providerErrorCode: 'invalid_grant' });
        expect(after.status).toBe('needs_reauth');
        const flag = (await storeOf(other).ledger.list({ accountId: account!.id, type: 'needs_reauth' }))
          .events[0];
        expect(flag?.detail).toMatchObject({
          possiblyLostInFlight: true,
          possibleLossCause: 'abandoned_lease',
        });
      } finally {
        await other.close();
        rmSync(journalDir(), { force: true });
      }
    });
  });
}
