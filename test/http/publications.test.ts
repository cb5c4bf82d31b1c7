import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  PlatformPublisher,
  PublishIO,
  PublishOutcome,
  PublishRequest,
} from '../../src/publishing/platformPublisher.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { insertSeededAccount } from '../support/accounts.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { MULTIPART_CONTENT_TYPE, multipartHead, multipartTail } from '../support/multipart.js';
import { startTestSimulator } from '../support/simulator.js';
import { TestPublisher } from '../support/testPublisher.js';
import { startUploadServer, type UploadServer } from '../support/uploadServer.js';
import { startTestService, type TestService } from './harness.js';

const MAX_BYTES = 8 * 1024 * 1024;

/**
 * Instagram's way, played by a test client: the platform fetches the video from `mediaUrl` (in two
 * Range requests, as fetchers do), then the link may die (the container is FINISHED).
 */
class UrlFetchingPublisher implements PlatformPublisher {
  readonly provider = 'instagram' as const;
  fetched: string[] = [];
  async authenticate(): Promise<never> {
    throw new Error('not used');
  }
  async publish(request: PublishRequest, _state: unknown, io: PublishIO): Promise<PublishOutcome> {
    const url = request.mediaUrl!;
    this.fetched.push(url);
    const half = Math.floor(request.totalBytes / 2);
    const hash = createHash('sha256');
    for (const range of [`bytes=0-${half - 1}`, `bytes=${half}-`]) {
      const answer = await fetch(url, { headers: { range } });
      if (answer.status !== 206) throw new Error(`media link answered ${answer.status}`);
      hash.update(Buffer.from(await answer.arrayBuffer()));
    }
    await io.saveState({ containerId: 'c1' }, { platformRef: 'c1' });
    await io.releaseMedia!();
    return { status: 'published', platformPostId: hash.digest('hex'), platformRef: 'c1', url: null };
  }
  async checkProcessing(): Promise<PublishOutcome> {
    throw new Error('not used');
  }
}

for (const factory of DATABASES) {
  describe(`the publications API on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let uploads: UploadServer;
    let service: TestService;
    let mediaDir: string;
    const instagram = new UrlFetchingPublisher();
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      uploads = await startUploadServer((token) => simulator.isAccessTokenValid('youtube', token));
      service = await startTestService(database, {
        simulator,
        env: { PUBLISH_MAX_BYTES: String(MAX_BYTES) },
        publishers: { youtube: new TestPublisher('youtube', uploads.url), instagram },
      });
      mediaDir = service.oauth.config.publishing.mediaDir;
    });
    afterAll(async () => {
      await service?.close();
      await uploads?.close();
      await simulator?.close();
      await database?.drop();
    });

    const youtubeAccount = () =>
      insertSeededAccount(storeOf(service.oauth).accounts, simulator, 'youtube', {
        externalAccountId: `yt-http-${++counter}`,
      });

    async function upload(
      accountId: string,
      content: Buffer,
      headers: Record<string, string> = {},
      metadata: unknown = { title: 'Clip' },
    ) {
      const payload = Buffer.concat([multipartHead(metadata), content, multipartTail]);
      const response = await fetch(`${service.baseUrl}/v1/accounts/${accountId}/publications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${service.apiKey}`,
          'content-type': MULTIPART_CONTENT_TYPE,
          ...headers,
        },
        body: payload,
      });
      // biome-ignore lint/suspicious/noExplicitAny: tests read whatever the API answered.
      return { status: response.status, body: (await response.json()) as any };
    }

    const mediaFiles = () => (existsSync(mediaDir) ? readdirSync(mediaDir) : []);

    it('a multipart upload answers 202, and the worker posts the bytes it received', async () => {
      const account = await youtubeAccount();
      const content = randomBytes(300_000);
      const created = await upload(account.id, content);
      expect(created.status).toBe(202);
      const publication = created.body.publication;
      expect(publication).toMatchObject({
        account_id: account.id,
        provider: 'youtube',
        status: 'queued',
        bytes_sent: 0,
        total_bytes: content.length,
        platform_post_id: null,
        error: null,
      });
      expect(mediaFiles()).toContain(publication.id);
      await service.oauth.createPublicationWorker().runUntilIdle();
      const read = await service.api('GET', `/v1/publications/${publication.id}`);
      expect(read.status).toBe(200);
      expect(read.body.publication).toMatchObject({ status: 'published', bytes_sent: content.length });
      expect(read.body.publication.platform_post_id).toMatch(/^post_/);
      expect(uploads.postedHashes().at(-1)).toBe(createHash('sha256').update(content).digest('hex'));
      // The received file lives until its publication ends.
      expect(mediaFiles()).not.toContain(publication.id);
    });

    it('the file part is streamed to MEDIA_DIR while the request is still being sent, not buffered', async () => {
      const account = await youtubeAccount();
      const first = randomBytes(3 * 1024 * 1024);
      const rest = randomBytes(1024 * 1024);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      async function* body() {
        yield multipartHead({ title: 'Streamed' });
        yield first;
        await released;
        yield rest;
        yield multipartTail;
      }
      const pending = request(`${service.baseUrl}/v1/accounts/${account.id}/publications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${service.apiKey}`,
          'content-type': MULTIPART_CONTENT_TYPE,
        },
        body: Readable.from(body()),
      });
      // Before the body is complete, its first part is already on disk.
      const deadline = Date.now() + 10_000;
      let onDisk = 0;
      while (onDisk < first.length - 64 * 1024 && Date.now() < deadline) {
        const partial = mediaFiles().find((name) => name.endsWith('.part'));
        onDisk = partial ? statSync(join(mediaDir, partial)).size : 0;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(onDisk).toBeGreaterThanOrEqual(first.length - 64 * 1024);
      release();
      const answer = await pending;
      expect(answer.statusCode).toBe(202);
      const { publication } = (await answer.body.json()) as { publication: { total_bytes: number } };
      expect(publication.total_bytes).toBe(first.length + rest.length);
      await service.oauth.createPublicationWorker().runUntilIdle();
    });

    it('metadata nested deeper than the call stack goes is a 400, not a 500', async () => {
      const account = await youtubeAccount();
      const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
      const head = Buffer.from(
        multipartHead({ title: 'Deep', options: 'DEEP' }).toString('utf8').replace('"DEEP"', deep),
      );
      const response = await fetch(`${service.baseUrl}/v1/accounts/${account.id}/publications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${service.apiKey}`, 'content-type': MULTIPART_CONTENT_TYPE },
        body: Buffer.concat([head, randomBytes(1024), multipartTail]),
      });
      const status = response.status;
      const body = (await response.json()) as { error: { code: string } };
      expect(status).toBe(400);
      expect(body.error.code).toBe('invalid_request');
    });

    it('an upload over PUBLISH_MAX_BYTES answers 413 and stores nothing (declared length, and chunked)', async () => {
      const account = await youtubeAccount();
      const before = mediaFiles();
      const declared = await upload(account.id, Buffer.alloc(MAX_BYTES + 200_000));
      expect(declared.status).toBe(413);
      expect(declared.body.error.code).toBe('payload_too_large');
      // Chunked: no length up front, refused once the file passes the limit.
      async function* chunked() {
        yield multipartHead({ title: 'Too big' });
        for (let sent = 0; sent <= MAX_BYTES; sent += 1024 * 1024) yield Buffer.alloc(1024 * 1024, 1);
        yield multipartTail;
      }
      const answer = await request(`${service.baseUrl}/v1/accounts/${account.id}/publications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${service.apiKey}`,
          'content-type': MULTIPART_CONTENT_TYPE,
        },
        body: Readable.from(chunked()),
      }).catch((error: unknown) => error);
      // Either the 413 arrives, or the connection closes as the server stops reading: never a 2xx.
      if (!(answer instanceof Error)) {
        expect((answer as { statusCode: number }).statusCode).toBe(413);
        await (answer as { body: { text(): Promise<string> } }).body.text();
      }
      expect(mediaFiles()).toEqual(before);
      const listed = await service.api('GET', `/v1/publications?account_id=${account.id}`);
      expect(listed.body.publications).toEqual([]);
    });

    it('the same Idempotency-Key answers 200 with the same publication, also for concurrent duplicates', async () => {
      const account = await youtubeAccount();
      const content = randomBytes(20_000);
      const before = mediaFiles();
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => upload(account.id, content, { 'idempotency-key': 'http-key-1' })),
      );
      const ids = new Set(answers.map((a) => a.body.publication.id));
      expect(ids.size).toBe(1);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 202]);
      const again = await upload(account.id, content, { 'idempotency-key': 'http-key-1' });
      expect(again.status).toBe(200);
      expect(again.body.publication.id).toBe([...ids][0]);
      // Only the winner's file was kept.
      expect(mediaFiles().filter((name) => !before.includes(name))).toEqual([...ids]);
      const listed = await service.api('GET', `/v1/publications?account_id=${account.id}`);
      expect(listed.body.publications).toHaveLength(1);
      await service.oauth.createPublicationWorker().runUntilIdle();
    });

    it('JSON with source_url: the service streams the video from it to the platform', async () => {
      const account = await youtubeAccount();
      const content = randomBytes(600_000);
      const path = join(database.dataDir, 'source.mp4');
      writeFileSync(path, content);
      const source = await serveFileWithRanges(path, content.length);
      try {
        const created = await service.api('POST', `/v1/accounts/${account.id}/publications`, {
          source_url: `${source.url}/video.mp4?signature=SECRET-SIGNATURE`,
          title: 'From a URL',
          privacy: 'private',
        });
        expect(created.status).toBe(202);
        expect(created.body.publication.total_bytes).toBe(content.length);
        expect(created.text).not.toContain('SECRET-SIGNATURE');
        const raw = await storeOf(service.oauth)
          .database.db.selectFrom('publications')
          .select('source_url')
          .where('id', '=', created.body.publication.id)
          .executeTakeFirstOrThrow();
        expect(raw.source_url).not.toContain('SECRET-SIGNATURE');
        await service.oauth.createPublicationWorker().runUntilIdle();
        const read = await service.api('GET', `/v1/publications/${created.body.publication.id}`);
        expect(read.body.publication.status).toBe('published');
        expect(uploads.postedHashes().at(-1)).toBe(createHash('sha256').update(content).digest('hex'));
      } finally {
        await new Promise<void>((resolve) => source.server.close(() => resolve()));
      }
    });

    it('Instagram gets an unguessable link to the file, with Range, dead once the platform has fetched it', async () => {
      const account = await insertSeededAccount(storeOf(service.oauth).accounts, simulator, 'instagram', {
        externalAccountId: `ig-http-${++counter}`,
      });
      const content = randomBytes(100_001);
      const created = await upload(account.id, content);
      expect(created.status).toBe(202);
      await service.oauth.createPublicationWorker().runUntilIdle();
      const read = await service.api('GET', `/v1/publications/${created.body.publication.id}`);
      expect(read.body.publication.status).toBe('published');
      expect(read.body.publication.platform_post_id).toBe(createHash('sha256').update(content).digest('hex'));
      const link = instagram.fetched.at(-1)!;
      expect(link).toMatch(new RegExp(`^${service.baseUrl}/media/[A-Za-z0-9_-]{43}$`));
      expect((await fetch(link)).status).toBe(404);
      expect((await fetch(`${service.baseUrl}/media/${'A'.repeat(43)}`)).status).toBe(404);
    });

    it('bad requests get catalogued errors before anything is stored', async () => {
      const account = await youtubeAccount();
      const before = mediaFiles();
      const anonymous = await fetch(`${service.baseUrl}/v1/accounts/${account.id}/publications`, {
        method: 'POST',
      });
      expect(anonymous.status).toBe(401);
      expect((await upload('no-such-account', Buffer.alloc(10))).status).toBe(404);
      const noTitle = await upload(account.id, Buffer.alloc(10), {}, { description: 'no title' });
      expect(noTitle.status).toBe(400);
      expect(noTitle.body.error.code).toBe('invalid_request');
      const text = await service.api('POST', `/v1/accounts/${account.id}/publications`, 'hello', {
        'content-type': 'text/plain',
      });
      expect(text.status).toBe(415);
      const nul = await upload(account.id, Buffer.alloc(10), {}, { title: 'a\u0000b' });
      expect(nul.status).toBe(400);
      const noUrl = await service.api('POST', `/v1/accounts/${account.id}/publications`, { title: 'x' });
      expect(noUrl.status).toBe(400);
      expect((await service.api('GET', '/v1/publications/pub_missing')).status).toBe(404);
      expect((await service.api('GET', '/v1/publications?cursor=bad!')).status).toBe(400);
      expect(mediaFiles()).toEqual(before);
    });

    it("the status page shows each account's recent publications", async () => {
      const account = await insertSeededAccount(
        storeOf(service.oauth).accounts,
        simulator,
        'youtube',
        { externalAccountId: `yt-portal-${++counter}` },
        { ownerId: 'owner-publications' },
      );
      const created = await upload(account.id, randomBytes(1000), {}, { title: 'Shown on the page' });
      await service.oauth.createPublicationWorker().runUntilIdle();
      const link = await service.api('POST', '/v1/portal-sessions', { owner_id: 'owner-publications' });
      const opened = await fetch(link.body.url, { redirect: 'manual' });
      const cookie = opened.headers.get('set-cookie')!.split(';')[0]!;
      const page = await (await fetch(`${service.baseUrl}/portal`, { headers: { cookie } })).text();
      expect(page).toContain(`data-publication-id="${created.body.publication.id}" data-status="published"`);
      expect(page).toContain('Shown on the page');
    });

    it('lists publications newest first, by account and status, a page at a time', async () => {
      const account = await youtubeAccount();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await upload(account.id, randomBytes(1000))).body.publication.id);
      const first = await service.api(
        'GET',
        `/v1/publications?account_id=${account.id}&status=queued&limit=2`,
      );
      expect(first.status).toBe(200);
      expect(first.body.publications).toHaveLength(2);
      const second = await service.api(
        'GET',
        `/v1/publications?account_id=${account.id}&status=queued&limit=2&cursor=${first.body.next_cursor}`,
      );
      const seen = [...first.body.publications, ...second.body.publications].map((p: { id: string }) => p.id);
      expect(new Set(seen)).toEqual(new Set(ids));
      expect(second.body.next_cursor).toBeNull();
      await service.oauth.createPublicationWorker().runUntilIdle();
    });
  });
}

/** A plain file server that answers Range requests, as object stores do. */
async function serveFileWithRanges(path: string, size: number): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = match ? Number(match[1]) : 0;
    const end = match && match[2] !== '' ? Number(match[2]) : size - 1;
    res.writeHead(match ? 206 : 200, {
      'content-type': 'video/mp4',
      'content-length': String(end - start + 1),
      ...(match ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    createReadStream(path, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
