import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { openDatabase } from '../src/store/database.js';
import {
  lastExecutedMigration,
  migrateDown,
  migrateToLatest,
  migrationStatus,
} from '../src/store/migrations.js';
import { openTestApp, testConfig } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';

const ACCESS = 'plain-access-token-5f0c1a';
const REFRESH = 'plain-refresh-token-9b27e4';

const accountInput = (clock: ManualClock, externalAccountId: string) => ({
  ownerId: 'owner-1',
  provider: 'tiktok' as const,
  externalAccountId,
  displayName: 'Creator',
  accessToken: ACCESS,
  refreshToken: REFRESH,
  expiresAt: clock.now() + 3_600_000,
  refreshTokenExpiresAt: clock.now() + 86_400_000,
  scopes: ['user.info.basic'],
  tokenIssuedAt: clock.now(),
});

for (const factory of DATABASES) {
  describe(`store on ${factory.kind}`, () => {
    let database: TestDatabase;
    let app: SocialOAuth;
    const clock = new ManualClock();

    beforeAll(async () => {
      database = await factory.create();
      app = await openTestApp(database, { clock });
    });
    afterAll(async () => {
      await app?.close();
      await database?.drop();
    });

    const newAccount = (externalAccountId: string) => accountInput(clock, externalAccountId);

    it('stores an account and reads its tokens back decrypted', async () => {
      const created = await storeOf(app).accounts.insert(newAccount('ext-1'), clock.now());
      const found = await storeOf(app).accounts.findById(created.id);
      expect(found).toMatchObject({
        accessToken: ACCESS,
        refreshToken: REFRESH,
        status: 'active',
        version: 1,
      });
      expect(found?.expiresAt).toBe(clock.now() + 3_600_000);
    });

    it('refuses a second account with the same provider and external id', async () => {
      await expect(storeOf(app).accounts.insert(newAccount('ext-1'), clock.now())).rejects.toThrow();
    });

    it('keeps the stored refresh token when a refresh response carries none', async () => {
      const created = await storeOf(app).accounts.insert(newAccount('ext-keep'), clock.now());
      const saved = await storeOf(app).accounts.saveTokens(
        created.id,
        {
          accessToken: 'new-access',
          refreshToken: null,
          expiresAt: null,
          refreshTokenExpiresAt: null,
          scopes: null,
          tokenIssuedAt: clock.now(),
        },
        clock.now(),
      );
      if (!saved) throw new Error('not saved');
      expect(saved.refreshToken).toBe(REFRESH);
      expect(saved.scopes).toEqual(['user.info.basic']);
      expect(saved.version).toBe(created.version + 1);
    });

    it('a reconnect without a refresh token keeps the stored one and its expiry (replaceGrant set it to NULL)', async () => {
      const created = await storeOf(app).accounts.insert(newAccount('ext-reconnect'), clock.now());
      const grant = {
        ownerId: 'owner-1',
        displayName: 'Creator',
        accessToken: 'reconnect-access',
        refreshToken: null,
        expiresAt: clock.now() + 3_600_000,
        refreshTokenExpiresAt: null,
        scopes: ['user.info.basic', 'video.publish'],
        tokenIssuedAt: clock.now(),
      };
      const kept = await storeOf(app).accounts.replaceGrant(created.id, grant, clock.now());
      expect(kept.accessToken).toBe('reconnect-access');
      expect(kept.refreshToken).toBe(REFRESH);
      expect(kept.refreshTokenExpiresAt).toBe(created.refreshTokenExpiresAt);
      expect(kept.scopes).toEqual(['user.info.basic', 'video.publish']);
      // A grant that brings one replaces it, expiry included.
      const replaced = await storeOf(app).accounts.replaceGrant(
        created.id,
        { ...grant, refreshToken: 'reconnect-refresh', refreshTokenExpiresAt: clock.now() + 7 * 86_400_000 },
        clock.now(),
      );
      expect(replaced.refreshToken).toBe('reconnect-refresh');
      expect(replaced.refreshTokenExpiresAt).toBe(clock.now() + 7 * 86_400_000);
    });

    it('a ciphertext copied into another row does not decrypt', async () => {
      // Inserting reads the row back, so A's ciphertext is in the decrypted-token cache: the copy in
      // B's row must still miss it (the cache key holds the account id) and fail authentication.
      const a = await storeOf(app).accounts.insert(newAccount('ext-a'), clock.now());
      const b = await storeOf(app).accounts.insert(newAccount('ext-b'), clock.now());
      const rowA = await storeOf(app)
        .database.db.selectFrom('social_accounts')
        .selectAll()
        .where('id', '=', a.id)
        .executeTakeFirstOrThrow();
      await storeOf(app)
        .database.db.updateTable('social_accounts')
        .set({ oauth_access_token: rowA.oauth_access_token })
        .where('id', '=', b.id)
        .execute();
      await expect(storeOf(app).accounts.findById(b.id)).rejects.toThrow(/could not be decrypted/);
    });

    it('saves made at the same moment share a statement, each with its own compare-and-set and ledger row', async () => {
      const accounts = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          storeOf(app).accounts.insert(newAccount(`ext-batch-${i}`), clock.now()),
        ),
      );
      const before = await storeOf(app).ledger.count({ type: 'refreshed' });
      const results = await Promise.all(
        accounts.map((account, i) =>
          storeOf(app).accounts.saveTokens(
            account.id,
            {
              accessToken: `batched-access-${i}`,
              refreshToken: i % 2 === 0 ? `batched-refresh-${i}` : null,
              expiresAt: clock.now() + 60_000,
              refreshTokenExpiresAt: clock.now() + 120_000,
              scopes: null,
              tokenIssuedAt: clock.now(),
            },
            clock.now(),
            // The last one expects a version the row is not at: only it is refused.
            i === 5 ? account.version + 7 : account.version,
            { current: account, event: { accountId: account.id, type: 'refreshed', detail: { i } } },
          ),
        ),
      );
      expect(results.slice(0, 5).map((saved) => saved?.accessToken)).toEqual(
        [0, 1, 2, 3, 4].map((i) => `batched-access-${i}`),
      );
      expect(results.slice(0, 5).map((saved) => saved?.refreshToken)).toEqual([
        'batched-refresh-0',
        REFRESH,
        'batched-refresh-2',
        REFRESH,
        'batched-refresh-4',
      ]);
      expect(results[5]).toBeNull();
      // Read back from the database (not from what the save returned): each row has its own tokens.
      for (const [i, account] of accounts.slice(0, 5).entries()) {
        const stored = await storeOf(app)
          .database.db.selectFrom('social_accounts')
          .select(['version', 'oauth_access_token'])
          .where('id', '=', account.id)
          .executeTakeFirstOrThrow();
        expect(stored.version).toBe(account.version + 1);
        expect(
          storeOf(app).cipher.decrypt(stored.oauth_access_token!, {
            accountId: account.id,
            field: 'access_token',
          }),
        ).toBe(`batched-access-${i}`);
      }
      expect((await storeOf(app).accounts.findById(accounts[5]!.id))?.accessToken).toBe(ACCESS);
      // A ledger row for each save that happened, none for the refused one.
      expect(await storeOf(app).ledger.count({ type: 'refreshed' })).toBe(before + 5);
      expect(await storeOf(app).ledger.count({ accountId: accounts[5]!.id })).toBe(0);
    });

    it('a row that cannot be decrypted fails only its own lease take, and gives that lease back', async () => {
      const good = await storeOf(app).accounts.insert(newAccount('ext-lease-good'), clock.now());
      const bad = await storeOf(app).accounts.insert(newAccount('ext-lease-bad'), clock.now());
      const goodRow = await storeOf(app)
        .database.db.selectFrom('social_accounts')
        .select('oauth_access_token')
        .where('id', '=', good.id)
        .executeTakeFirstOrThrow();
      // As if written with a key this process lacks: it does not authenticate for this row.
      await storeOf(app)
        .database.db.updateTable('social_accounts')
        .set({ oauth_access_token: goodRow.oauth_access_token })
        .where('id', '=', bad.id)
        .execute();
      const now = clock.now();
      // Taken at the same moment: one batch.
      const [goodTake, badTake] = await Promise.allSettled([
        storeOf(app).accounts.tryAcquireRefreshLease(good.id, 'worker-a', now, 30_000),
        storeOf(app).accounts.tryAcquireRefreshLease(bad.id, 'worker-a', now, 30_000),
      ]);
      expect(goodTake.status).toBe('fulfilled');
      expect(goodTake.status === 'fulfilled' && goodTake.value?.account.accessToken).toBe(ACCESS);
      expect(badTake.status).toBe('rejected');
      const badState = await storeOf(app).accounts.readVersion(bad.id);
      expect(badState?.leaseOwner).toBeNull();
      expect(badState?.leaseUntil).toBeNull();
    });

    it('saves tokens inside a transaction of the repository', async () => {
      const account = await storeOf(app).accounts.insert(newAccount('ext-in-trx'), clock.now());
      const saved = await storeOf(app).accounts.transaction((accounts) =>
        accounts.saveTokens(
          account.id,
          {
            accessToken: 'access-in-trx',
            refreshToken: null,
            expiresAt: null,
            refreshTokenExpiresAt: null,
            scopes: null,
            tokenIssuedAt: clock.now(),
          },
          clock.now(),
          account.version,
          { event: { accountId: account.id, type: 'refreshed' } },
        ),
      );
      expect(saved?.accessToken).toBe('access-in-trx');
      expect(await storeOf(app).ledger.count({ accountId: account.id, type: 'refreshed' })).toBe(1);
    });

    it('grants the refresh lease to one owner at a time, and only the owner can release it', async () => {
      const account = await storeOf(app).accounts.insert(newAccount('ext-lease'), clock.now());
      const now = clock.now();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'worker-a', now, 30_000),
      ).not.toBeNull();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'worker-b', now, 30_000),
      ).toBeNull();
      await storeOf(app).accounts.releaseRefreshLease(account.id, 'worker-b');
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'worker-b', now + 1, 30_000),
      ).toBeNull();
      await storeOf(app).accounts.releaseRefreshLease(account.id, 'worker-a');
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'worker-b', now + 2, 30_000),
      ).not.toBeNull();
    });

    it('lets another owner take a lease that expired (a crashed refresher)', async () => {
      const account = await storeOf(app).accounts.insert(newAccount('ext-crash'), clock.now());
      if (factory.kind === 'postgres') {
        // There leases run by the database's clock: the caller's `now` cannot make one lapse.
        expect(
          await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'crashed', clock.now(), 150),
        ).not.toBeNull();
        expect(
          await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'next', clock.now() + 60_000, 150),
        ).toBeNull();
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(
          await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'next', clock.now(), 30_000),
        ).not.toBeNull();
        expect(
          await storeOf(app).accounts.tryRenewRefreshLease(account.id, 'crashed', clock.now(), 30_000),
        ).toBe(false);
        return;
      }
      const now = clock.now();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'crashed', now, 30_000),
      ).not.toBeNull();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'next', now + 29_999, 30_000),
      ).toBeNull();
      expect(
        await storeOf(app).accounts.tryAcquireRefreshLease(account.id, 'next', now + 30_000, 30_000),
      ).not.toBeNull();
      expect(
        await storeOf(app).accounts.tryRenewRefreshLease(account.id, 'crashed', now + 30_001, 30_000),
      ).toBe(false);
    });

    it('appends ledger events and pages through them in order', async () => {
      for (let i = 0; i < 5; i++) {
        await storeOf(app).ledger.append(
          { accountId: 'ledger-acc', type: 'refreshed', detail: { i } },
          clock.now(),
        );
      }
      const first = await storeOf(app).ledger.list({ accountId: 'ledger-acc', limit: 3 });
      expect(first.events.map((e) => e.detail?.i)).toEqual([0, 1, 2]);
      const second = await storeOf(app).ledger.list({
        accountId: 'ledger-acc',
        limit: 3,
        afterSeq: first.nextCursor!,
      });
      expect(second.events.map((e) => e.detail?.i)).toEqual([3, 4]);
      expect(second.nextCursor).toBeNull();
    });

    it('never writes a token in plaintext to the database', async () => {
      if (factory.kind === 'sqlite') {
        // WAL mode: recent writes may still sit in the -wal file; read both.
        const path = testConfig(database).sqlitePath;
        const bytes = Buffer.concat([readFileSync(path), readWal(path)]).toString('latin1');
        expect(bytes).not.toContain(ACCESS);
        expect(bytes).not.toContain(REFRESH);
        expect(bytes).toContain('ext-1'); // the file is really the one we wrote
      } else {
        const dump = execFileSync('pg_dump', ['--data-only', database.databaseUrl!], { encoding: 'utf8' });
        expect(dump).toContain('ext-1');
        expect(dump).not.toContain(ACCESS);
        expect(dump).not.toContain(REFRESH);
      }
    });

    it('migrates down and up again, with the data of the remaining tables intact', async () => {
      const store = openDatabase({
        databaseUrl: database.databaseUrl ?? null,
        sqlitePath: testConfig(database).sqlitePath,
      });
      try {
        // Undo everything after the tokens migration: the accounts must survive it.
        for (let i = 0; i < 50 && (await lastExecutedMigration(store)) !== '001_social_accounts'; i++) {
          await migrateDown(store);
        }
        expect(await lastExecutedMigration(store)).toBe('001_social_accounts');
        expect(await storeOf(app).accounts.count()).toBeGreaterThan(0);
        await migrateDown(store);
        expect(await lastExecutedMigration(store)).toBeNull();
        await migrateToLatest(store);
        expect((await migrationStatus(store)).every((m) => m.executedAt !== null)).toBe(true);
        expect(await storeOf(app).accounts.count()).toBe(0);
      } finally {
        await store.close();
      }
    });
  });
}

function readWal(path: string): Buffer {
  try {
    return readFileSync(`${path}-wal`);
  } catch {
    return Buffer.alloc(0);
  }
}

describe('SQLite writes on the writer thread', () => {
  const sqliteFactory = DATABASES.find((factory) => factory.kind === 'sqlite')!;
  let database: TestDatabase;
  let app: SocialOAuth;
  const clock = new ManualClock();
  let accountNumber = 0;

  beforeAll(async () => {
    database = await sqliteFactory.create();
    app = await openTestApp(database, { clock });
  });
  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  const insertAccount = (into: SocialOAuth = app) =>
    storeOf(into).accounts.insert(accountInput(clock, `ext-writer-${accountNumber++}`), clock.now());
  const newTokens = (accessToken: string) => ({
    accessToken,
    refreshToken: null,
    expiresAt: clock.now() + 60_000,
    refreshTokenExpiresAt: null,
    scopes: null,
    tokenIssuedAt: clock.now(),
  });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** Another process on the same file. */
  const otherProcess = () => new BetterSqlite3(join(database.dataDir, 'social-oauth.db'));

  it('waits for a write lock held by another process without stopping the event loop', async () => {
    const account = await insertAccount();
    const other = otherProcess();
    try {
      other.exec('begin immediate');
      const taking = storeOf(app).accounts.tryAcquireRefreshLease(
        account.id,
        'worker-a',
        clock.now(),
        30_000,
      );
      // better-sqlite3 waits for a lock synchronously: on the service's thread this timer would
      // fire only when the other process commits.
      const asked = performance.now();
      await sleep(20);
      const timerLateMs = performance.now() - asked - 20;
      await sleep(400);
      other.exec('commit');
      expect(timerLateMs).toBeLessThan(200);
      expect((await taking)?.account.id).toBe(account.id);
    } finally {
      other.close();
    }
  });

  it('a repository transaction that read first can still write while the writer thread is busy', async () => {
    const a = await insertAccount();
    const b = await insertAccount();
    let outside: Promise<unknown> | undefined;
    await storeOf(app).accounts.transaction(async (accounts) => {
      await accounts.findById(a.id);
      // A save outside the transaction goes to the writer thread meanwhile. Had the transaction
      // not taken the write lock at BEGIN, that save would commit now and the write below would
      // fail at once with SQLITE_BUSY (a read transaction cannot be upgraded past a newer commit).
      outside = storeOf(app).accounts.saveTokens(b.id, newTokens('outside-access'), clock.now());
      await sleep(150);
      await accounts.recordRefreshError(a.id, 'inside the transaction', clock.now());
    });
    expect(await outside).toMatchObject({ accessToken: 'outside-access' });
    expect((await storeOf(app).accounts.findById(a.id))?.lastError).toBe('inside the transaction');
  });

  it('closing stores the saves still gathering and the writes the thread is waiting to make', async () => {
    const own = await openTestApp(database, { clock });
    const first = await insertAccount(own);
    const second = await insertAccount(own);
    const other = otherProcess();
    let saves: Promise<unknown>[];
    try {
      other.exec('begin immediate');
      // The first save goes to the thread, which waits for the lock; the second gathers behind it.
      saves = [storeOf(own).accounts.saveTokens(first.id, newTokens('closing-1'), clock.now())];
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      saves.push(storeOf(own).accounts.saveTokens(second.id, newTokens('closing-2'), clock.now()));
      const closing = own.close();
      await sleep(300);
      other.exec('commit');
      await closing;
    } finally {
      other.close();
    }
    await Promise.all(saves);
    expect((await storeOf(app).accounts.findById(first.id))?.accessToken).toBe('closing-1');
    expect((await storeOf(app).accounts.findById(second.id))?.accessToken).toBe('closing-2');
  });
});
