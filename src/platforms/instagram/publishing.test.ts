import { createReadStream } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestMedia, memoryIO, type TestMedia } from '../../../test/support/memoryPublishIO.js';
import { startTestSimulator } from '../../../test/support/simulator.js';
import { ReauthorizationRequired } from '../../domain/errors.js';
import type { PublishRequest } from '../../publishing/platformPublisher.js';
import type { ProviderSimulator } from '../../simulator/simulator.js';
import {
  DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
  type PlatformPublishingSettings,
} from '../publishingSettings.js';
import { InstagramPublisher } from './publishing.js';

const IG_USER = '17841400000000777';
const SIZE = 3 * 1024 * 1024 + 17;

describe('Instagram publishing client (Instagram Login, REELS) against the simulator', () => {
  let simulator: ProviderSimulator;
  let media: TestMedia;
  /** Stands in for the service's public media URL: Meta (the simulator) downloads from it. */
  let mediaServer: Server;
  let mediaUrl: string;
  /** Whether the stand-in link still serves the file (the service kills it on releaseMedia). */
  let linkAlive = true;

  beforeAll(async () => {
    simulator = await startTestSimulator();
    media = await makeTestMedia(SIZE);
    mediaServer = createServer((req, res) => {
      if (req.url !== '/media/video.mp4' || !linkAlive) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(media.size) });
      createReadStream(media.path).pipe(res);
    });
    await new Promise<void>((resolve) => mediaServer.listen(0, '127.0.0.1', resolve));
    mediaUrl = `http://127.0.0.1:${(mediaServer.address() as AddressInfo).port}/media/video.mp4`;
  });
  afterAll(async () => {
    await simulator.close();
    await new Promise((resolve) => mediaServer.close(resolve));
    await media.dispose();
  });
  beforeEach(() => {
    linkAlive = true;
    simulator.uploads.reset();
    simulator.uploads.clearFaults();
    simulator.seedAccount('instagram', { externalAccountId: IG_USER, displayName: 'ig_creator' });
  });

  const publisher = (overrides: Partial<PlatformPublishingSettings> = {}) =>
    new InstagramPublisher(
      { baseUrl: simulator.baseUrlFor('instagram') },
      { timeoutMs: 5_000 },
      {
        ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
        instagramStatusLooks: 250, // up to 5 s for the simulator to download the video
        instagramStatusIntervalMs: 20,
        ...overrides,
      },
    );
  const request = (overrides: Partial<PublishRequest> = {}): PublishRequest => ({
    title: 'Reel title',
    description: 'Reel description',
    privacy: null,
    mode: null,
    options: {},
    totalBytes: media.size,
    contentType: 'video/mp4',
    mediaUrl,
    ...overrides,
  });
  const io = () => {
    const publishIO = memoryIO(simulator, 'instagram', IG_USER, media);
    // Status polls really wait a little here: the simulator downloads the video in the background.
    publishIO.sleep = async (ms) => {
      publishIO.sleeps.push(ms);
      await new Promise((resolve) => setTimeout(resolve, ms));
    };
    return publishIO;
  };
  const theContainer = () => {
    const containers = simulator.uploads.uploads('instagram');
    expect(containers).toHaveLength(1);
    return containers[0]!;
  };

  it('creates a REELS container, polls it, checks the limit, publishes once; Meta fetched the file’s bytes', async () => {
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    const container = theContainer();
    const posts = simulator.uploads.posts('instagram', IG_USER);
    expect(posts).toHaveLength(1);
    // The url is the media's permalink, read after media_publish (IG Media reference).
    expect(outcome).toEqual({
      status: 'published',
      platformPostId: posts[0]!.postId,
      platformRef: container.id,
      url: container.details.permalink,
    });
    expect(outcome).toMatchObject({
      url: expect.stringMatching(/^https:\/\/www\.instagram\.com\/reel\/[\w-]{11}\/$/),
    });
    expect(publishIO.warnings).toEqual([]);
    expect(container.sha256).toBe(media.sha256);
    expect(container.details).toMatchObject({
      caption: 'Reel title\n\nReel description',
      videoUrl: mediaUrl,
    });
    // The container id was durable before the first status poll.
    expect(publishIO.saves[0]).toMatchObject({ state: { containerId: container.id, userId: IG_USER } });
  });

  it('releases the media link as soon as the container is FINISHED: after Meta fetched it, before media_publish', async () => {
    const publishIO = io();
    const atRelease: Array<{ posts: number; fetched: string | null }> = [];
    publishIO.onRelease = () => {
      atRelease.push({
        posts: simulator.uploads.posts('instagram').length,
        fetched: theContainer().sha256,
      });
      linkAlive = false;
    };

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('published');
    expect(publishIO.releases).toBe(1);
    expect(atRelease).toEqual([{ posts: 0, fetched: media.sha256 }]);
    expect((await fetch(mediaUrl)).status).toBe(404);
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('the permalink cannot be read (5xx past the retries): still published, url null, a warning', async () => {
    simulator.uploads.setFaults('instagram', { routes: ['post'], failNext: 100, status: 500 });
    const publishIO = io();

    const outcome = await publisher({ backoffBaseMs: 5, backoffMaxMs: 10 }).publish(
      request(),
      null,
      publishIO,
    );

    const posts = simulator.uploads.posts('instagram', IG_USER);
    expect(posts).toHaveLength(1);
    expect(outcome).toMatchObject({ status: 'published', platformPostId: posts[0]!.postId, url: null });
    expect(publishIO.warnings).toHaveLength(1);
    expect(publishIO.warnings[0]!.detail).toMatchObject({ mediaId: posts[0]!.postId });
    const reads = DEFAULT_PLATFORM_PUBLISHING_SETTINGS.maxAttempts;
    expect(simulator.uploads.faults('instagram').failNext).toBe(100 - reads);
    // The post was durable (with its media id) before the permalink was asked for.
    expect(publishIO.saves.at(-1)).toMatchObject({
      state: { mediaId: posts[0]!.postId },
      progress: { status: 'published' },
    });
  });

  it('a media without permalink (flagged for copyright): published, url null, no warning', async () => {
    simulator.uploads.settings.instagram.copyrightFlagged = true;
    const publishIO = io();
    try {
      const outcome = await publisher().publish(request(), null, publishIO);
      expect(outcome).toMatchObject({ status: 'published', url: null });
      expect(publishIO.warnings).toEqual([]);
      expect(simulator.uploads.posts('instagram')).toHaveLength(1);
    } finally {
      simulator.uploads.settings.instagram.copyrightFlagged = false;
    }
  });

  it('the permalink read refused twice with code 190: one refresh, still published, url null', async () => {
    simulator.uploads.setFaults('instagram', { routes: ['post'], unauthorizedNext: 2 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome).toMatchObject({ status: 'published', url: null });
    expect(publishIO.refreshes).toBe(1);
    expect(publishIO.warnings).toHaveLength(1);
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('the simulator serves a media’s fields to its owner only (IG Media: 100 / 33 for another account)', async () => {
    await publisher().publish(request(), null, io());
    const [post] = simulator.uploads.posts('instagram', IG_USER);
    const read = (token: string) =>
      fetch(
        `${simulator.baseUrlFor('instagram')}/v26.0/${post!.postId}?fields=permalink,media_product_type`,
        {
          headers: { authorization: `Bearer ${token}` },
        },
      );

    const own = await read(simulator.issueTokens('instagram', IG_USER).accessToken);
    expect(own.status).toBe(200);
    expect(await own.json()).toEqual({
      id: post!.postId,
      permalink: theContainer().details.permalink,
      media_product_type: 'REELS',
    });
    simulator.seedAccount('instagram', { externalAccountId: '17841400000000888' });
    const other = await read(simulator.issueTokens('instagram', '17841400000000888').accessToken);
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: { code: 100, error_subcode: 33 } });
  });

  it('code 190 (HTTP 400) on a status poll: exactly one refresh and that request again', async () => {
    simulator.uploads.setFaults('instagram', { routes: ['status'], unauthorizedNext: 1 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('published');
    expect(publishIO.refreshes).toBe(1);
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('a second 190 after the refresh is ReauthorizationRequired', async () => {
    simulator.uploads.setFaults('instagram', { routes: ['init'], unauthorizedNext: 2 });
    const publishIO = io();

    await expect(publisher().publish(request(), null, publishIO)).rejects.toBeInstanceOf(
      ReauthorizationRequired,
    );
    expect(publishIO.refreshes).toBe(1);
  });

  it('a spent publishing limit is a final failure found before media_publish', async () => {
    simulator.uploads.setFaults('instagram', { quotaExhausted: true });

    const outcome = await publisher().publish(request(), null, io());

    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'publishing_limit_reached' });
    expect(simulator.uploads.posts('instagram')).toHaveLength(0);
  });

  it('a 5xx on media_publish: the status is read first, then published once', async () => {
    simulator.uploads.setFaults('instagram', { routes: ['publish'], failNext: 1, status: 500 });

    const outcome = await publisher().publish(request(), null, io());

    expect(outcome.status).toBe('published');
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('after a crash with the container saved, a new client polls that container: one container, one post', async () => {
    const first = io();
    first.sleep = async () => first.abort(); // dies at its first wait between polls
    await expect(publisher().publish(request(), null, first)).rejects.toThrow('aborted by the test');
    expect(first.state).toMatchObject({ containerId: theContainer().id });

    const second = first.restarted();
    second.sleep = async (ms) => void (await new Promise((resolve) => setTimeout(resolve, ms)));
    const outcome = await publisher().publish(request(), second.state, second);

    expect(outcome.status).toBe('published');
    theContainer();
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('a container already PUBLISHED is never published again (its media id was lost in a crash)', async () => {
    const first = io();
    await publisher().publish(request(), null, first);
    const beforeMediaId = first.saves[0]!.state; // container id, no media id

    const outcome = await publisher().publish(request(), beforeMediaId, first.restarted());

    expect(outcome).toEqual({
      status: 'published',
      platformPostId: null,
      platformRef: theContainer().id,
      url: null,
    });
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('a container stuck IN_PROGRESS answers `processing`; later looks publish it, once', async () => {
    simulator.uploads.setFaults('instagram', { stuckProcessing: true });
    const client = new InstagramPublisher(
      { baseUrl: simulator.baseUrlFor('instagram') },
      { timeoutMs: 5_000 },
      {
        ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
        instagramStatusLooks: 3,
        instagramStatusIntervalMs: 20,
      },
    );
    const publishIO = io();

    expect(await client.publish(request(), null, publishIO)).toMatchObject({ status: 'processing' });
    simulator.uploads.clearFaults();
    await expect.poll(() => theContainer().sha256, { timeout: 5_000 }).toBe(media.sha256);
    let later = await client.checkProcessing(publishIO.state!, publishIO);
    for (let look = 0; look < 3 && later.status === 'processing'; look++) {
      later = await client.checkProcessing(publishIO.state!, publishIO);
    }
    expect(later).toMatchObject({ status: 'published' });
    expect(simulator.uploads.posts('instagram')).toHaveLength(1);
  });

  it('a video_url Meta cannot fetch ends the container in ERROR: a final failure', async () => {
    const outcome = await publisher().publish(request({ mediaUrl: `${mediaUrl}.missing` }), null, io());
    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'instagram_container_error' });
    expect(simulator.uploads.posts('instagram')).toHaveLength(0);
  });

  it('authenticate reads user_id and username; canPublish needs instagram_business_content_publish', async () => {
    const token = simulator.issueTokens('instagram', IG_USER).accessToken;
    expect(await publisher().authenticate(token, ['instagram_business_basic'])).toMatchObject({
      externalAccountId: IG_USER,
      displayName: 'ig_creator',
      canPublish: false,
      missingScopes: ['instagram_business_content_publish'],
    });
  });

  it('the simulator refuses media_publish before the container is FINISHED: 9007 / 2207027', async () => {
    const token = simulator.issueTokens('instagram', IG_USER).accessToken;
    const graph = `${simulator.baseUrlFor('instagram')}/v26.0/${IG_USER}`;
    const form = (fields: Record<string, string>) => ({
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const created = await fetch(`${graph}/media`, form({ media_type: 'REELS', video_url: mediaUrl }));
    const { id } = (await created.json()) as { id: string };
    const early = await fetch(`${graph}/media_publish`, form({ creation_id: id }));
    expect(early.status).toBe(400);
    expect(await early.json()).toMatchObject({ error: { code: 9007, error_subcode: 2207027 } });
    expect(simulator.uploads.posts('instagram')).toHaveLength(0);
  });

  it('without a public media URL nothing is sent', async () => {
    const outcome = await publisher().publish(request({ mediaUrl: null }), null, io());
    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'media_url_required' });
    expect(simulator.uploads.uploads('instagram')).toHaveLength(0);
  });
});
