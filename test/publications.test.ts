import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getProviderClientForAccount } from '../src/index.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';
import { TestPublisher } from './support/testPublisher.js';
import { startUploadServer, type UploadServer } from './support/uploadServer.js';

const CHUNK = 256 * 1024;

for (const factory of DATABASES) {
  describe(`publications on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let server: UploadServer;
    let app: SocialOAuth;
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      server = await startUploadServer((token) => simulator.isAccessTokenValid('youtube', token));
      app = await openTestApp(database, {
        env: { ...simulatorEnv(simulator), PUBLISH_RETRY_BASE_MS: '10', PUBLISH_RETRY_MAX_MS: '50' },
        publishers: { youtube: new TestPublisher('youtube', server.url, CHUNK), tiktok: null },
      });
    });
    afterAll(async () => {
      await app?.close();
      await server?.close();
      await simulator?.close();
      await database?.drop();
    });
    beforeEach(() => {
      server.putDelayMs = 0;
      server.refuseNext(0);
    });

    async function account() {
      return insertSeededAccount(storeOf(app).accounts, simulator, 'youtube', {
        externalAccountId: `yt-pub-${++counter}`,
      });
    }

    function video(bytes: number): { path: string; sha256: string } {
      const content = randomBytes(bytes);
      const path = join(database.dataDir, `video-${++counter}.mp4`);
      writeFileSync(path, content);
      return { path, sha256: createHash('sha256').update(content).digest('hex') };
    }

    async function publicationEvents(accountId: string) {
      const page = await storeOf(app).ledger.list({ accountId, limit: 500 });
      return page.events.filter((e) => e.type.startsWith('publication_')).map((e) => e.type);
    }

    it('the same idempotency key twice gives one publication', async () => {
      const { id: accountId } = await account();
      const { path } = video(1000);
      const input = {
        accountId,
        idempotencyKey: 'key-1',
        title: 'One video',
        media: { kind: 'file' as const, path, owned: false },
      };
      const first = await app.publications.create(input);
      const second = await app.publications.create(input);
      expect(first.created).toBe(true);
      expect(second.created).toBe(false);
      expect(second.publication.id).toBe(first.publication.id);
      expect(await publicationEvents(accountId)).toEqual(['publication_queued']);
    });

    it('concurrent creates with one idempotency key give one publication, and only its file is kept', async () => {
      const { id: accountId } = await account();
      const content = randomBytes(50_000);
      const outcomes = await Promise.all(
        Array.from({ length: 8 }, () =>
          app.publications.create({
            accountId,
            idempotencyKey: 'same-key',
            title: 'Raced',
            media: { kind: 'stream', stream: Readable.from([content]), size: content.length },
          }),
        ),
      );
      const ids = new Set(outcomes.map((o) => o.publication.id));
      expect(ids.size).toBe(1);
      expect(outcomes.filter((o) => o.created)).toHaveLength(1);
      const [id] = [...ids];
      const files = readdirSync(app.config.publishing.mediaDir).filter(
        (name) => name.startsWith(id!) || !name.includes('.'),
      );
      expect(readdirSync(app.config.publishing.mediaDir).filter((n) => n.endsWith('.part'))).toEqual([]);
      expect(files.filter((name) => outcomes.some((o) => o.publication.id === name))).toEqual([id]);
      expect(await publicationEvents(accountId)).toEqual(['publication_queued']);
    });

    it('the worker posts a queued publication once, and the bytes that arrive hash to the file', async () => {
      // Earlier tests left queued publications: the worker takes them too.
      await app.createPublicationWorker().runUntilIdle();
      const before = server.posts;
      const { id: accountId } = await account();
      const { path, sha256 } = video(3 * CHUNK + 1234);
      const { publication } = await app.publications.create({
        accountId,
        title: 'Worked',
        media: { kind: 'file', path, owned: false },
      });
      await app.createPublicationWorker().runUntilIdle();
      const done = (await app.publications.get(publication.id))!;
      expect(done.status).toBe('published');
      expect(done.platformPostId).toMatch(/^post_/);
      expect(done.bytesSent).toBe(3 * CHUNK + 1234);
      expect(done.resumableState).toBeNull();
      expect(server.posts - before).toBe(1);
      expect(server.postedHashes().at(-1)).toBe(sha256);
      expect(await publicationEvents(accountId)).toEqual([
        'publication_queued',
        'publication_uploading',
        'publication_published',
      ]);
    });

    it('a connection cut mid-upload resumes at the offset the platform confirmed, in the same session', async () => {
      const { id: accountId } = await account();
      const size = 4 * CHUNK;
      const { path, sha256 } = video(size);
      const { publication } = await app.publications.create({
        accountId,
        title: 'Cut',
        media: { kind: 'file', path, owned: false },
      });
      const [inits, received] = [server.inits, server.bytesReceived];
      server.cutNextPutAfter(100_000);
      await app.createPublicationWorker().runUntilIdle();
      const done = (await app.publications.get(publication.id))!;
      expect(done.status).toBe('published');
      expect(server.inits - inits).toBe(1);
      // Nothing the platform had confirmed was sent twice.
      expect(server.bytesReceived - received).toBe(size);
      expect(server.postedHashes().at(-1)).toBe(sha256);
    });

    it('a 401 mid-publication gets exactly one refresh and one retry, then posts', async () => {
      const account_ = await account();
      const { path } = video(CHUNK);
      const { publication } = await app.publications.create({
        accountId: account_.id,
        title: 'Refused once',
        media: { kind: 'file', path, owned: false },
      });
      server.refuseNext(1);
      await app.createPublicationWorker().runUntilIdle();
      expect((await app.publications.get(publication.id))!.status).toBe('published');
      expect(simulator.refreshCalls('youtube', account_.externalAccountId)).toBe(1);
      expect((await storeOf(app).accounts.findById(account_.id))!.status).toBe('active');
    });

    it('a second refusal after the forced refresh ends the publication needs_reauth and flags the account', async () => {
      const account_ = await account();
      const { path } = video(CHUNK);
      const posts = server.posts;
      const { publication } = await app.publications.create({
        accountId: account_.id,
        title: 'Refused twice',
        media: { kind: 'file', path, owned: false },
      });
      server.refuseNext(2);
      await app.createPublicationWorker().runUntilIdle();
      const ended = (await app.publications.get(publication.id))!;
      expect(ended.status).toBe('needs_reauth');
      expect(ended.error?.code).toBe('needs_reauth');
      expect(simulator.refreshCalls('youtube', account_.externalAccountId)).toBe(1);
      expect(server.posts).toBe(posts);
      const flagged = (await storeOf(app).accounts.findById(account_.id))!;
      expect(flagged.status).toBe('needs_reauth');
      const types = (await storeOf(app).ledger.list({ accountId: account_.id, limit: 50 })).events.map(
        (e) => e.type,
      );
      expect(types).toEqual([
        'publication_queued',
        'publication_uploading',
        'refreshed',
        'needs_reauth',
        'publication_needs_reauth',
      ]);
      // The account is dead: a new publication is refused before any byte is stored.
      await expect(
        app.publications.create({
          accountId: account_.id,
          title: 'After',
          media: { kind: 'file', path, owned: false },
        }),
      ).rejects.toMatchObject({ code: 'account_needs_reauth' });
    });

    it('5xx answers are retried inside the run and the upload goes on from the confirmed offset', async () => {
      const { id: accountId } = await account();
      const { path, sha256 } = video(2 * CHUNK);
      const { publication } = await app.publications.create({
        accountId,
        title: 'Flaky',
        media: { kind: 'file', path, owned: false },
      });
      server.failNextPuts(2);
      await app.createPublicationWorker().runUntilIdle();
      expect((await app.publications.get(publication.id))!.status).toBe('published');
      expect(server.postedHashes().at(-1)).toBe(sha256);
    });

    it('the resumable state is stored encrypted, bound to its publication', async () => {
      const { id: accountId } = await account();
      const { path } = video(10);
      const { publication } = await app.publications.create({
        accountId,
        title: 'Sealed',
        media: { kind: 'file', path, owned: false },
      });
      const claimed = await storeOf(app).publishing.repository.claimById(
        publication.id,
        'test-owner',
        Date.now(),
        60_000,
      );
      expect(claimed).not.toBeNull();
      const secret = 'https://upload.example/session/SECRET-SESSION-URI';
      expect(
        await storeOf(app).publishing.repository.saveProgress(
          publication,
          'test-owner',
          Date.now(),
          { state: { secret } },
          null,
        ),
      ).toBe(true);
      const raw = await storeOf(app)
        .database.db.selectFrom('publications')
        .select('resumable_state')
        .where('id', '=', publication.id)
        .executeTakeFirstOrThrow();
      expect(raw.resumable_state).toMatch(/^v1\./);
      expect(raw.resumable_state).not.toContain('SECRET');
      expect((await app.publications.get(publication.id))!.resumableState).toEqual({ secret });
    });

    it('a worker whose lease was taken over cannot write the publication any more', async () => {
      const { id: accountId } = await account();
      const { path } = video(10);
      const { publication } = await app.publications.create({
        accountId,
        title: 'Taken over',
        media: { kind: 'file', path, owned: false },
      });
      const repo = storeOf(app).publishing.repository;
      const now = Date.now();
      expect(await repo.claimById(publication.id, 'first', now, 1_000)).not.toBeNull();
      // Not free while the first holds it; free once it lapsed.
      expect(await repo.claimById(publication.id, 'second', now + 500, 1_000)).toBeNull();
      expect(await repo.claimById(publication.id, 'second', now + 1_001, 1_000)).not.toBeNull();
      expect(
        await repo.saveProgress(publication, 'first', now + 1_002, { state: { late: true } }, null),
      ).toBe(false);
      expect(
        await repo.saveProgress(publication, 'second', now + 1_002, { state: { mine: true } }, null),
      ).toBe(true);
    });

    it('getProviderClientForAccount uploads a stream and reports progress; the same key does not post again', async () => {
      const { id: accountId } = await account();
      const content = randomBytes(2 * CHUNK + 7);
      const client = await getProviderClientForAccount(app, accountId);
      const identity = await client.authenticate();
      expect(identity).toMatchObject({ provider: 'youtube', canPublish: true });
      const progress: number[] = [];
      const posts = server.posts;
      const first = await client.uploadVideo(
        { stream: Readable.from([content]), size: content.length, title: 'Library' },
        { idempotencyKey: 'lib-1', onProgress: (sent) => progress.push(sent) },
      );
      expect(first).toMatchObject({ status: 'published', error: null });
      expect(first.platformPostId).toMatch(/^post_/);
      expect(progress.at(-1)).toBe(content.length);
      const again = await client.uploadVideo(
        { stream: Readable.from([content]), size: content.length, title: 'Library' },
        { idempotencyKey: 'lib-1' },
      );
      expect(again.id).toBe(first.id);
      expect(server.posts - posts).toBe(1);
      expect(server.postedHashes().at(-1)).toBe(createHash('sha256').update(content).digest('hex'));
    });

    it('a publication whose account was deleted fails with account_not_found, not a retry loop', async () => {
      const doomed = await account();
      const { path } = video(10);
      const { publication } = await app.publications.create({
        accountId: doomed.id,
        title: 'Orphan',
        media: { kind: 'file', path, owned: false },
      });
      await storeOf(app).accounts.delete(doomed.id);
      await app.createPublicationWorker().runUntilIdle();
      const ended = (await app.publications.get(publication.id))!;
      expect(ended.status).toBe('failed');
      expect(ended.error?.code).toBe('account_not_found');
      expect(ended.attempts).toBe(0);
    });

    it('a platform this service cannot publish to is refused before anything is stored', async () => {
      const seeded = await insertSeededAccount(storeOf(app).accounts, simulator, 'tiktok', {
        externalAccountId: `tt-${++counter}`,
      });
      const { path } = video(10);
      await expect(
        app.publications.create({
          accountId: seeded.id,
          title: 'x',
          media: { kind: 'file', path, owned: false },
        }),
      ).rejects.toMatchObject({ code: 'provider_not_configured' });
    });
  });
}
