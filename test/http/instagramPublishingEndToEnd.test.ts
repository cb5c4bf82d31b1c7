import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InstagramPublisher } from '../../src/platforms/instagram/publishing.js';
import { DEFAULT_PLATFORM_PUBLISHING_SETTINGS } from '../../src/platforms/publishingSettings.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { insertSeededAccount } from '../support/accounts.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { MULTIPART_CONTENT_TYPE, multipartVideo } from '../support/multipart.js';
import { startTestSimulator } from '../support/simulator.js';
import { startTestService, type TestService } from './harness.js';

/**
 * Issue 13, Instagram end to end: a file posted to the HTTP API is published by the real Instagram
 * client to the simulator, which (as Meta does, docs/PLATFORMS.md "Instagram: Instagram API with
 * Instagram Login") downloads `video_url` itself: from our own `GET /media/:token` under
 * PUBLIC_BASE_URL (the test's listening service), or from the caller's `source_url`. The
 * simulator hashes what it downloaded and counts the posts, so "the same bytes" and "exactly one
 * media" are read from the platform's side.
 *
 * The client is the service's own InstagramPublisher, built with short status polls (Meta asks for
 * one a minute; a test cannot wait minutes) and few retries.
 */
const sha256 = (content: Buffer) => createHash('sha256').update(content).digest('hex');

for (const factory of DATABASES) {
  describe(`Instagram publishing end to end through HTTP (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let service: TestService;
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      const instagram = new InstagramPublisher(
        { baseUrl: simulator.baseUrlFor('instagram') },
        { timeoutMs: 10_000 },
        {
          ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
          instagramStatusLooks: 250, // up to 5 s for the simulator to download the video
          instagramStatusIntervalMs: 20,
          maxAttempts: 2,
          backoffBaseMs: 10,
          backoffMaxMs: 20,
        },
      );
      service = await startTestService(database, {
        simulator,
        publishers: { instagram },
        // A retry waits at least 200 ms: long enough to look at a publication between two runs.
        env: { PUBLISH_RETRY_BASE_MS: '400', PUBLISH_RETRY_MAX_MS: '800' },
      });
    });
    afterAll(async () => {
      await service?.close();
      await simulator?.close();
      await database?.drop();
    });
    beforeEach(() => simulator.uploads.clearFaults());

    const instagramAccount = () =>
      insertSeededAccount(storeOf(service.oauth).accounts, simulator, 'instagram', {
        externalAccountId: `178414000000${String(++counter).padStart(5, '0')}`,
      });

    async function postFile(accountId: string, content: Buffer, metadata: Record<string, unknown>) {
      const body = multipartVideo(metadata, content);
      const response = await fetch(`${service.baseUrl}/v1/accounts/${accountId}/publications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${service.apiKey}`,
          'content-type': MULTIPART_CONTENT_TYPE,
        },
        body,
      });
      expect(response.status).toBe(202);
      return ((await response.json()) as { publication: { id: string } }).publication.id;
    }

    const readPublication = async (id: string) =>
      (await service.api('GET', `/v1/publications/${id}`)).body.publication;

    const containersOf = (externalAccountId: string) =>
      simulator.uploads.uploads('instagram').filter((u) => u.externalAccountId === externalAccountId);

    it('a file posted with multipart: Meta fetches it from our /media link, one media, the same bytes', async () => {
      const account = await instagramAccount();
      const content = randomBytes(900_001);

      const id = await postFile(account.id, content, { title: 'Reel', description: 'From a file' });
      await service.oauth.createPublicationWorker().runUntilIdle();

      const publication = await readPublication(id);
      const posts = simulator.uploads.posts('instagram', account.externalAccountId);
      expect(posts).toHaveLength(1);
      expect(publication).toMatchObject({
        status: 'published',
        provider: 'instagram',
        platform_post_id: posts[0]!.postId,
        error: null,
      });
      const containers = containersOf(account.externalAccountId);
      expect(containers).toHaveLength(1);
      const container = containers[0]!;
      expect(publication.platform_ref).toBe(container.id);
      // The url is the media's permalink, read after media_publish.
      expect(publication.url).toBe(container.details.permalink);
      expect(publication.url).toMatch(/^https:\/\/www\.instagram\.com\/reel\//);
      // The simulator downloaded video_url from this service's own link under PUBLIC_BASE_URL.
      const videoUrl = String(container.details.videoUrl);
      expect(videoUrl).toMatch(new RegExp(`^${service.baseUrl}/media/[A-Za-z0-9_-]{43}$`));
      expect(container.sha256).toBe(sha256(content));
      expect(container.storedBytes).toBe(content.length);
      expect(container.details.caption).toBe('Reel\n\nFrom a file');
      // The publication has ended: its link is dead.
      expect((await fetch(videoUrl)).status).toBe(404);
    });

    it('the link dies as soon as the container is FINISHED, before the publication is published', async () => {
      const account = await instagramAccount();
      const content = randomBytes(300_007);
      // Meta fetches the video and the container is FINISHED; then the publishing-limit read fails
      // (5xx) as often as the client tries in one run, so the run ends with nothing published.
      simulator.uploads.setFaults('instagram', { routes: ['limit'], failNext: 2, status: 500 });

      const id = await postFile(account.id, content, { title: 'Held after FINISHED' });
      await service.oauth.createPublicationWorker().runUntilIdle();

      const [container] = containersOf(account.externalAccountId);
      expect(container?.sha256).toBe(sha256(content));
      const held = await readPublication(id);
      expect(held.status).toBe('processing');
      expect(simulator.uploads.posts('instagram', account.externalAccountId)).toHaveLength(0);
      const videoUrl = String(container?.details.videoUrl);
      expect(videoUrl.startsWith(`${service.baseUrl}/media/`)).toBe(true);
      const dead = await fetch(videoUrl);
      expect(dead.status).toBe(404);
      expect(await dead.json()).toMatchObject({ error: { code: 'not_found' } });

      // The retry reads the container (FINISHED) and publishes it, once; no new link is made.
      await new Promise((resolve) => setTimeout(resolve, 900));
      await service.oauth.createPublicationWorker().runUntilIdle();
      const posts = simulator.uploads.posts('instagram', account.externalAccountId);
      expect(posts).toHaveLength(1);
      expect(await readPublication(id)).toMatchObject({
        status: 'published',
        platform_post_id: posts[0]!.postId,
      });
      expect(containersOf(account.externalAccountId)).toHaveLength(1);
    });

    it('JSON with source_url: Meta fetches the caller’s URL itself, one media, the same bytes', async () => {
      const account = await instagramAccount();
      const content = randomBytes(400_003);
      const source = await serveBytes(content);
      try {
        const sourceUrl = `${source.url}/reel.mp4?signature=SECRET-SIGNATURE`;
        const created = await service.api('POST', `/v1/accounts/${account.id}/publications`, {
          source_url: sourceUrl,
          title: 'From a URL',
        });
        expect(created.status).toBe(202);
        expect(created.text).not.toContain('SECRET-SIGNATURE');
        await service.oauth.createPublicationWorker().runUntilIdle();

        const publication = await readPublication(created.body.publication.id);
        const posts = simulator.uploads.posts('instagram', account.externalAccountId);
        expect(posts).toHaveLength(1);
        expect(publication).toMatchObject({ status: 'published', platform_post_id: posts[0]!.postId });
        expect(publication.url).toEqual(expect.stringContaining('https://www.instagram.com/reel/'));
        const [container] = containersOf(account.externalAccountId);
        // No link of ours in between: the platform was handed the caller's URL as given.
        expect(container?.details.videoUrl).toBe(sourceUrl);
        expect(container?.sha256).toBe(sha256(content));
      } finally {
        await new Promise<void>((resolve) => source.server.close(() => resolve()));
      }
    });
  });
}

/** A plain file server standing in for the caller's storage (answers HEAD/Range probes too). */
async function serveBytes(content: Buffer): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = match ? Number(match[1]) : 0;
    const end =
      match && match[2] !== '' ? Math.min(Number(match[2]), content.length - 1) : content.length - 1;
    res.writeHead(match ? 206 : 200, {
      'content-type': 'video/mp4',
      'content-length': String(end - start + 1),
      ...(match ? { 'content-range': `bytes ${start}-${end}/${content.length}` } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : content.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
