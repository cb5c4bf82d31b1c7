import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../src/domain/providerName.js';
import { AccountLifecycle } from '../src/service/accountLifecycle.js';
import type { NotificationDispatcher } from '../src/service/notificationDispatcher.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { StatusNotifier } from '../src/service/statusNotifier.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { NotificationOutboxRepository } from '../src/store/notificationOutboxRepository.js';
import { type CliProcess, spawnCli, stopGracefully } from './chaos/chaosSupport.js';
import { eventually } from './http/harness.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

const SECRET = 'whsec-outbox-test';
const HOUR = 3_600_000;
const FAST_BACKOFF = { baseMs: 20, maxMs: 100 };

type ReceiverMode = 'ok' | 'fail' | 'reject' | 'hang';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  /** The status this receiver answered (0: it never answered). */
  status: number;
}

/** A real HTTP receiver for outgoing notifications, whose behaviour the test switches. */
async function startReceiver() {
  const received: Received[] = [];
  let mode: ReceiverMode = 'ok';
  let failuresLeft = 0;
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const entry: Received = {
      headers: request.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      status: 0,
    };
    received.push(entry);
    const current = failuresLeft > 0 ? 'fail' : mode;
    if (failuresLeft > 0) failuresLeft--;
    if (current === 'hang') return; // never answers
    entry.status = current === 'ok' ? 204 : current === 'reject' ? 410 : 503;
    // A little work per request, so that two processes' deliveries overlap.
    setTimeout(() => response.writeHead(entry.status).end(), 10);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    setMode(next: ReceiverMode, options: { failFirst?: number } = {}) {
      mode = next;
      failuresLeft = options.failFirst ?? 0;
    },
    /** Requests for one event, and how many of them it answered 2xx. */
    forEvent(id: string) {
      const all = received.filter((r) => r.headers['social-oauth-event-id'] === id);
      return { all, delivered: all.filter((r) => r.status >= 200 && r.status < 300).length };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

for (const factory of DATABASES) {
  describe(`notification outbox (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let app: SocialOAuth;
    let outbox: NotificationOutboxRepository;
    let counter = 0;
    const running: NotificationDispatcher[] = [];
    const processes: CliProcess[] = [];

    const env = () => ({ ...simulatorEnv(simulator), WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET });

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      receiver = await startReceiver();
      app = await openTestApp(database, { env: env() });
      outbox = new NotificationOutboxRepository(storeOf(app).database);
    });
    afterEach(async () => {
      for (const dispatcher of running.splice(0)) await dispatcher.close(0);
      for (const process of processes.splice(0)) await stopGracefully(process, 5_000);
      receiver.setMode('ok');
      await storeOf(app).database.db.deleteFrom('notification_outbox').execute();
    });
    afterAll(async () => {
      await app?.close();
      await receiver?.close();
      await simulator?.close();
      await database?.drop();
    });

    async function connect(provider: ProviderName, options: { refreshExpiresAt?: number } = {}) {
      const externalAccountId = `${provider}-outbox-${++counter}`;
      const now = Date.now();
      return insertSeededAccount(
        storeOf(app).accounts,
        simulator,
        provider,
        {
          externalAccountId,
          issuedAt: now - 60_000,
          ...(options.refreshExpiresAt ? { refreshExpiresAt: options.refreshExpiresAt } : {}),
        },
        { ownerId: 'owner-outbox', now },
      );
    }

    /** A YouTube account whose grant the platform has dropped, refreshed: it becomes needs_reauth. */
    async function deadAccount(on: SocialOAuth = app) {
      const account = await connect('youtube');
      simulator.revokeGrant('youtube', account.externalAccountId);
      const { account: after } = await on.tokens.refreshOAuthToken(account.id);
      expect(after.status).toBe('needs_reauth');
      const events = await storeOf(app).ledger.list({ accountId: account.id, type: 'needs_reauth' });
      expect(events.events).toHaveLength(1);
      return { account, eventId: events.events[0]!.id };
    }

    function dispatcherOf(on: SocialOAuth): NotificationDispatcher {
      const dispatcher = on.createNotificationDispatcher({ backoff: FAST_BACKOFF })!;
      running.push(dispatcher);
      return dispatcher;
    }

    it('writes the notification in the commit of the status change: a refused outbox write leaves the account as it was', async () => {
      const account = await connect('youtube');
      simulator.revokeGrant('youtube', account.externalAccountId);
      const store = storeOf(app).database;
      if (store.kind === 'postgres') {
        await sql
          .raw(
            `create function refuse_outbox() returns trigger language plpgsql as
             $$ begin raise exception 'the database refused the write'; end $$`,
          )
          .execute(store.db);
        await sql
          .raw(
            'create trigger refuse_outbox before insert on notification_outbox for each row execute function refuse_outbox()',
          )
          .execute(store.db);
      } else {
        await sql
          .raw(
            `create trigger refuse_outbox before insert on notification_outbox
             begin select raise(abort, 'the database refused the write'); end`,
          )
          .execute(store.db);
      }
      try {
        await expect(app.tokens.refreshOAuthToken(account.id)).rejects.toThrow('refused the write');
        // Nothing of the change was committed: no status without its event and its notification.
        expect((await storeOf(app).accounts.findById(account.id))!.status).toBe('active');
        expect(await storeOf(app).ledger.count({ accountId: account.id, type: 'needs_reauth' })).toBe(0);
      } finally {
        await sql
          .raw(`drop trigger refuse_outbox${store.kind === 'postgres' ? ' on notification_outbox' : ''}`)
          .execute(store.db);
        if (store.kind === 'postgres') await sql.raw('drop function refuse_outbox()').execute(store.db);
      }
      // The platform still says invalid_grant: the next refresh records all three together.
      await app.tokens.refreshOAuthToken(account.id);
      expect((await storeOf(app).accounts.findById(account.id))!.status).toBe('needs_reauth');
      const [event] = (await storeOf(app).ledger.list({ accountId: account.id, type: 'needs_reauth' }))
        .events;
      expect(await outbox.stateOf(event!.id)).toMatchObject({ state: 'pending', attempts: 0 });
    });

    it('bug: a notification pending when the process stopped was lost; the next process delivers it', async () => {
      // The first process: its receiver is down, so the notification is still pending when it stops.
      receiver.setMode('fail');
      const first = await openTestApp(database, { env: env() });
      const firstDispatcher = dispatcherOf(first);
      first.tokens.onEvent(firstDispatcher.listener);
      firstDispatcher.start();
      const { eventId } = await deadAccount(first);
      await eventually(() => expect(receiver.forEvent(eventId).all.length).toBeGreaterThanOrEqual(1), 20_000);
      await firstDispatcher.close(1_000);
      await first.close();
      const left = (await outbox.stateOf(eventId))!;
      expect(left.state).toBe('pending');
      expect(left.attempts).toBeGreaterThanOrEqual(1);

      // The next process (the built CLI's worker) delivers it once the receiver is back.
      receiver.setMode('ok');
      const worker = spawnCli(['worker'], testEnv(database, { ...env(), WEBHOOK_POLL_SECONDS: '1' }));
      processes.push(worker);
      await eventually(() => expect(receiver.forEvent(eventId).delivered).toBe(1), 90_000).catch((error) => {
        throw new Error(`${(error as Error).message}\n${worker.output()}`);
      });
      await stopGracefully(worker);
      expect(await worker.exited).toBe(0);

      const delivered = receiver.forEvent(eventId);
      expect(delivered.delivered).toBe(1);
      const last = delivered.all.at(-1)!;
      const body = JSON.parse(last.body);
      expect(body).toMatchObject({
        id: eventId,
        type: 'account.needs_reauth',
        account: { status: 'needs_reauth' },
      });
      // Every attempt, from either process, carried the same event id and the same body.
      expect(new Set(delivered.all.map((r) => JSON.parse(r.body).id))).toEqual(new Set([eventId]));
      const signature = String(last.headers['social-oauth-signature']);
      const timestamp = Number(/t=(\d+)/.exec(signature)![1]);
      expect(signature).toBe(StatusNotifier.sign(SECRET, timestamp, last.body));
      expect(await outbox.stateOf(eventId)).toMatchObject({
        state: 'delivered',
        attempts: left.attempts + 1,
      });
    }, 120_000);

    it('two processes deliver each of 30 notifications exactly once', async () => {
      const lifecycle = new AccountLifecycle({
        accounts: storeOf(app).accounts,
        ledger: storeOf(app).ledger,
        providers: storeOf(app).providers,
        clock: app.clock,
        logger: app.logger,
      });
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const account = await connect('tiktok');
        await lifecycle.revokedByPlatform('tiktok', account.externalAccountId, 'platform_deauthorized', {});
        const [event] = (await storeOf(app).ledger.list({ accountId: account.id, type: 'revoked' })).events;
        ids.push(event!.id);
      }
      const workerEnv = testEnv(database, { ...env(), WEBHOOK_POLL_SECONDS: '1' });
      processes.push(spawnCli(['worker'], workerEnv), spawnCli(['worker'], workerEnv));
      await eventually(async () => expect((await outbox.countByState()).delivered).toBe(30), 90_000).catch(
        (error) => {
          throw new Error(`${(error as Error).message}\n${processes.map((p) => p.output()).join('\n')}`);
        },
      );
      // Give a straggler the time to send a second copy, if the claims let one through.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      for (const id of ids) {
        expect(receiver.forEvent(id)).toMatchObject({ delivered: 1 });
        expect(receiver.forEvent(id).all).toHaveLength(1);
        expect(await outbox.stateOf(id)).toMatchObject({ state: 'delivered', attempts: 1 });
      }
    }, 120_000);

    it('a receiver that fails gets retries with backoff, the same event id each time; a refusal is final', async () => {
      const dispatcher = dispatcherOf(app);
      app.tokens.onEvent(dispatcher.listener);
      dispatcher.start();
      receiver.setMode('ok', { failFirst: 3 });
      const { eventId } = await deadAccount();
      await eventually(
        async () => expect(await outbox.stateOf(eventId)).toMatchObject({ state: 'delivered', attempts: 4 }),
        20_000,
      );
      const attempts = receiver.forEvent(eventId).all;
      expect(attempts.map((r) => r.status)).toEqual([503, 503, 503, 204]);
      expect(new Set(attempts.map((r) => JSON.parse(r.body).id))).toEqual(new Set([eventId]));

      // 410 Gone: the receiver does not want it; asking again would not change its mind.
      receiver.setMode('reject');
      const refused = await deadAccount();
      await eventually(
        async () =>
          expect(await outbox.stateOf(refused.eventId)).toMatchObject({ state: 'failed', attempts: 1 }),
        20_000,
      );
      expect((await outbox.stateOf(refused.eventId))!.lastError).toBe('HTTP 410');
      expect(receiver.forEvent(refused.eventId).all).toHaveLength(1);
    });

    it('gives up after WEBHOOK_MAX_ATTEMPTS, counted across processes', async () => {
      const limited = await openTestApp(database, { env: { ...env(), WEBHOOK_MAX_ATTEMPTS: '3' } });
      try {
        receiver.setMode('fail');
        const dispatcher = dispatcherOf(limited);
        dispatcher.start();
        const { eventId } = await deadAccount(limited);
        dispatcher.wake();
        await eventually(
          async () => expect(await outbox.stateOf(eventId)).toMatchObject({ state: 'failed', attempts: 3 }),
          20_000,
        );
        expect(receiver.forEvent(eventId).all).toHaveLength(3);
      } finally {
        for (const dispatcher of running.splice(0)) await dispatcher.close(0);
        await limited.close();
      }
    });

    it('bug: the notifier ignored the stop signal; a stop cuts an attempt short and hands the notification back', async () => {
      receiver.setMode('hang');
      const dispatcher = dispatcherOf(app);
      app.tokens.onEvent(dispatcher.listener);
      dispatcher.start();
      const { eventId } = await deadAccount();
      await eventually(() => expect(receiver.forEvent(eventId).all).toHaveLength(1), 20_000);
      const started = Date.now();
      await dispatcher.close(200);
      // Not the 10 s of the attempt's own timeout.
      expect(Date.now() - started).toBeLessThan(3_000);
      const state = (await outbox.stateOf(eventId))!;
      expect(state).toMatchObject({ state: 'pending', attempts: 0, claimedBy: null });
      expect(state.nextAttemptAt).toBeLessThanOrEqual(Date.now());
    });

    it('account.expiring: one notification a day before a grant ends, however many processes look', async () => {
      const now = Date.now();
      const soon = await connect('tiktok', { refreshExpiresAt: now + 12 * HOUR });
      const later = await connect('tiktok', { refreshExpiresAt: now + 3 * 24 * HOUR });
      const second = await openTestApp(database, { env: env() });
      try {
        const here = dispatcherOf(app);
        const there = dispatcherOf(second);
        if (factory.kind === 'postgres') {
          await Promise.all([here.runOnce(), there.runOnce(), here.runOnce()]);
        } else {
          // Two SQLite connections in one Node process cannot wait for each other (better-sqlite3
          // blocks the event loop while it waits for the lock); real processes can, as above.
          for (const look of [here, there, here]) await look.runOnce();
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
        const expiring = receiver.received.filter((r) => JSON.parse(r.body).type === 'account.expiring');
        expect(expiring).toHaveLength(1);
        const body = JSON.parse(expiring[0]!.body);
        expect(body).toMatchObject({
          type: 'account.expiring',
          account: { id: soon.id, status: 'active' },
          expires_at: new Date(now + 12 * HOUR).toISOString(),
        });
        expect(await storeOf(app).ledger.count({ accountId: soon.id, type: 'expiring' })).toBe(1);
        expect(await storeOf(app).ledger.count({ accountId: later.id, type: 'expiring' })).toBe(0);
        const [event] = (await storeOf(app).ledger.list({ accountId: soon.id, type: 'expiring' })).events;
        expect(body.id).toBe(event!.id);
      } finally {
        for (const dispatcher of running.splice(0)) await dispatcher.close(0);
        await second.close();
      }
    });

    it('a process whose clock runs ahead does not prune the expiring row another process still relies on to warn once', async () => {
      // A grant that ends in three days, noticed four days ahead; delivery rows kept one hour.
      const now = Date.now();
      const grantEnd = now + 3 * 24 * HOUR;
      const account = await connect('tiktok', { refreshExpiresAt: grantEnd });
      const notice = { now, noticeMs: 4 * 24 * HOUR, limit: 1000 };
      const rowsOfAccount = async () =>
        (
          await storeOf(app)
            .database.db.selectFrom('notification_outbox')
            .select('event_id')
            .where('account_id', '=', account.id)
            .execute()
        ).length;
      try {
        expect(await outbox.recordExpiring(notice)).toBeGreaterThanOrEqual(1);
        for (const claimed of await outbox.claimDue({ now, limit: 1000, claimMs: 60_000, owner: 'test' })) {
          await outbox.markDelivered(claimed.eventId, 'test', now);
        }
        expect(await rowsOfAccount()).toBe(1);
        // Another process, its clock a little past the grant's end, prunes with its own now.
        const ahead = grantEnd + 60_000;
        await outbox.pruneDelivered({ deliveredBefore: ahead - HOUR, limit: 1000 });
        // This process, still before the grant's end, looks again: the row must still say "warned".
        expect(await rowsOfAccount()).toBe(1);
        await outbox.recordExpiring(notice);
        expect(await rowsOfAccount()).toBe(1);
      } finally {
        await storeOf(app).accounts.delete(account.id);
      }
    });

    it('bug: delivered notifications stayed forever; they are pruned after the retention, in batches, keeping what still matters', async () => {
      // Delivered now: five needs_reauth notifications and an account.expiring one whose grant ends
      // in three days (noticed four days ahead); one refused (failed).
      const notice = { WEBHOOK_EXPIRING_NOTICE_SECONDS: String(4 * 24 * 3600) };
      const now = Date.now();
      const expiringAccount = await connect('tiktok', { refreshExpiresAt: now + 3 * 24 * HOUR });
      const delivered: string[] = [];
      for (let i = 0; i < 5; i++) delivered.push((await deadAccount()).eventId);
      const today = await openTestApp(database, { env: { ...env(), ...notice } });
      try {
        const dispatcher = dispatcherOf(today);
        while ((await dispatcher.runOnce()) > 0);
        receiver.setMode('reject');
        const refused = await deadAccount();
        while ((await dispatcher.runOnce()) > 0);
        receiver.setMode('ok');
        const [expiring] = (await app.ledger.list({ accountId: expiringAccount.id, type: 'expiring' }))
          .events;
        for (const id of [...delivered, expiring!.id])
          expect((await outbox.stateOf(id))?.state).toBe('delivered');
        expect((await outbox.stateOf(refused.eventId))?.state).toBe('failed');

        // Two hours later, with a one-hour retention: a pending notification written meanwhile.
        const pending = await deadAccount();
        const later = await openTestApp(database, {
          env: { ...env(), ...notice, WEBHOOK_DELIVERED_RETENTION_SECONDS: '3600' },
          clock: { now: () => Date.now() + 2 * HOUR },
        });
        try {
          receiver.setMode('fail');
          const pruner = later.createNotificationDispatcher({ backoff: FAST_BACKOFF, pruneBatchSize: 2 })!;
          running.push(pruner);
          // One round: three statements of two rows, the expiring look, and the pending one tried.
          await pruner.runOnce();
          for (const id of delivered) expect(await outbox.stateOf(id)).toBeNull();
          expect((await outbox.stateOf(expiring!.id))?.state).toBe('delivered');
          expect((await outbox.stateOf(refused.eventId))?.state).toBe('failed');
          expect((await outbox.stateOf(pending.eventId))?.state).toBe('pending');
          // The expiring row is still what keeps its warning to once: another look writes no second one.
          const look = later.createNotificationDispatcher({ backoff: FAST_BACKOFF })!;
          running.push(look);
          await look.runOnce();
          expect(await storeOf(app).ledger.count({ accountId: expiringAccount.id, type: 'expiring' })).toBe(
            1,
          );
          // The ledger keeps every event: only the delivery rows go.
          const ledger = (await app.ledger.list({ type: 'needs_reauth', limit: 1000 })).events.map(
            (e) => e.id,
          );
          expect(ledger).toEqual(expect.arrayContaining(delivered));
        } finally {
          for (const dispatcher of running.splice(0)) await dispatcher.close(0);
          await later.close();
        }
      } finally {
        for (const dispatcher of running.splice(0)) await dispatcher.close(0);
        await today.close();
        // Its grant would be noticed again by later looks once afterEach empties the outbox.
        await storeOf(app).accounts.delete(expiringAccount.id);
      }
    });
  });
}
