import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  MemoryPublishIO,
  makeTestMedia,
  memoryIO,
  type TestMedia,
} from '../../../test/support/memoryPublishIO.js';
import { startTestSimulator } from '../../../test/support/simulator.js';
import { ManualClock } from '../../domain/clock.js';
import { ReauthorizationRequired } from '../../domain/errors.js';
import type { PublishRequest } from '../../publishing/platformPublisher.js';
import type { ProviderSimulator } from '../../simulator/simulator.js';
import { defaultUploadSettings } from '../../simulator/uploads.js';
import { DEFAULT_PLATFORM_PUBLISHING_SETTINGS } from '../publishingSettings.js';
import { TikTokPublisher } from './publishing.js';

const OPEN_ID = '-000publishingOpenId01';
const CHUNK = 5_000_000;
const SIZE = 16_000_123; // floor(16,000,123 / 5,000,000) = 3 chunks: 5 MB, 5 MB, 6,000,123 bytes

describe('TikTok publishing client (Content Posting API) against the simulator', () => {
  let simulator: ProviderSimulator;
  let media: TestMedia;

  beforeAll(async () => {
    simulator = await startTestSimulator();
    media = await makeTestMedia(SIZE);
  });
  afterAll(async () => {
    await simulator.close();
    await media.dispose();
  });
  beforeEach(() => {
    simulator.uploads.reset();
    simulator.uploads.clearFaults();
    Object.assign(simulator.uploads.settings.tiktok, defaultUploadSettings().tiktok);
    simulator.seedAccount('tiktok', { externalAccountId: OPEN_ID, displayName: 'Creator' });
  });

  const publisher = () =>
    new TikTokPublisher(
      { baseUrl: simulator.baseUrlFor('tiktok') },
      { timeoutMs: 5_000 },
      {
        ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
        tiktokChunkBytes: CHUNK,
        tiktokStatusLooks: 3,
      },
    );
  const request = (overrides: Partial<PublishRequest> = {}): PublishRequest => ({
    title: 'A title',
    description: 'and its description',
    privacy: null,
    mode: 'direct',
    options: { disable_duet: true },
    totalBytes: media.size,
    contentType: 'video/mp4',
    mediaUrl: null,
    ...overrides,
  });
  const io = () => memoryIO(simulator, 'tiktok', OPEN_ID, media);
  const theUpload = () => {
    const uploads = simulator.uploads.uploads('tiktok');
    expect(uploads).toHaveLength(1); // exactly one init
    return uploads[0]!;
  };

  it('direct post with the default SELF_ONLY: one init, three chunks, published without a public id', async () => {
    const publishIO = io();
    let storedAtFirstSave = -1;
    const save = publishIO.saveState.bind(publishIO);
    publishIO.saveState = async (state, progress) => {
      if (storedAtFirstSave < 0) storedAtFirstSave = theUpload().receivedBytes;
      return save(state, progress);
    };

    const outcome = await publisher().publish(request(), null, publishIO);

    const upload = theUpload();
    expect(outcome).toEqual({ status: 'published', platformPostId: null, platformRef: upload.id, url: null });
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes).toBe(media.size);
    expect(upload.byteRequests).toBe(3);
    expect(upload.details).toMatchObject({
      privacyLevel: 'SELF_ONLY',
      plan: { chunkSize: CHUNK, totalChunkCount: 3 },
    });
    expect(storedAtFirstSave).toBe(0); // publish_id and upload_url were durable before the first chunk
    expect(publishIO.saves[0]?.state).toMatchObject({
      publishId: upload.id,
      uploadUrl: expect.stringContaining('upload_id='),
    });
    expect(simulator.uploads.posts('tiktok', OPEN_ID)).toHaveLength(1);
  });

  it('a public post of an audited client gets its public post id', async () => {
    simulator.uploads.settings.tiktok.audited = true;
    const outcome = await publisher().publish(request({ privacy: 'PUBLIC_TO_EVERYONE' }), null, io());
    expect(outcome).toMatchObject({ status: 'published', platformPostId: expect.stringMatching(/^\d+$/) });
  });

  it('inbox mode ends SEND_TO_USER_INBOX', async () => {
    const outcome = await publisher().publish(request({ mode: 'inbox' }), null, io());
    expect(outcome).toMatchObject({ status: 'sent_to_inbox', platformRef: theUpload().id });
  });

  it('a privacy level the creator is not offered fails before any upload, naming the options', async () => {
    simulator.uploads.settings.tiktok.privacyLevelOptions = ['FOLLOWER_OF_CREATOR', 'SELF_ONLY'];
    const publishIO = io();

    const outcome = await publisher().publish(request({ privacy: 'PUBLIC_TO_EVERYONE' }), null, publishIO);

    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'privacy_level_not_offered' });
    if (outcome.status === 'failed') expect(outcome.message).toContain('FOLLOWER_OF_CREATOR, SELF_ONLY');
    expect(simulator.uploads.uploads('tiktok')).toHaveLength(0);
    expect(publishIO.saves).toHaveLength(0);
  });

  it('a connection cut mid-chunk is answered by status/fetch, never a new init; at most that chunk is re-sent', async () => {
    simulator.uploads.setFaults('tiktok', { cutAfterBytes: CHUNK + 1_234_567 });

    const outcome = await publisher().publish(request(), null, io());

    expect(outcome.status).toBe('published');
    const upload = theUpload();
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes - media.size).toBeLessThanOrEqual(CHUNK);
    expect(simulator.uploads.posts('tiktok')).toHaveLength(1);
  });

  it('a 5xx on a chunk: status/fetch, then that chunk again', async () => {
    simulator.uploads.setFaults('tiktok', { routes: ['chunk'], skip: 1, failNext: 1, status: 502 });

    const outcome = await publisher().publish(request(), null, io());

    expect(outcome.status).toBe('published');
    expect(theUpload().sha256).toBe(media.sha256);
    expect(simulator.uploads.posts('tiktok')).toHaveLength(1);
  });

  it('access_token_invalid on status/fetch: exactly one refresh and that request again', async () => {
    simulator.uploads.setFaults('tiktok', { routes: ['status'], unauthorizedNext: 1 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('published');
    expect(publishIO.refreshes).toBe(1);
    expect(simulator.uploads.posts('tiktok')).toHaveLength(1);
  });

  it('a second access_token_invalid after the refresh is ReauthorizationRequired', async () => {
    simulator.uploads.setFaults('tiktok', { routes: ['creator'], unauthorizedNext: 2 });
    const publishIO = io();

    await expect(publisher().publish(request(), null, publishIO)).rejects.toBeInstanceOf(
      ReauthorizationRequired,
    );
    expect(publishIO.refreshes).toBe(1);
    expect(simulator.uploads.uploads('tiktok')).toHaveLength(0);
  });

  it.each(['spam_risk_too_many_posts', 'reached_active_user_cap', 'spam_risk_user_banned_from_posting'])(
    '%s at init is a final failure with its code; nothing uploaded',
    async (code) => {
      if (code === 'spam_risk_too_many_posts')
        simulator.uploads.setFaults('tiktok', { quotaExhausted: true });
      else simulator.uploads.setFaults('tiktok', { refuseInit: code });
      const publishIO = io();

      const outcome = await publisher().publish(request(), null, publishIO);

      expect(outcome).toMatchObject({ status: 'failed', errorCode: code, retryAt: null });
      expect(simulator.uploads.uploads('tiktok')).toHaveLength(0);
      expect(publishIO.saves).toHaveLength(0);
    },
  );

  it('after a crash mid-upload, a new client with the saved state asks status/fetch and sends only the missing chunks', async () => {
    const first = io();
    first.onProgress = () => first.abort(); // dies after the first chunk was accepted
    await expect(publisher().publish(request(), null, first)).rejects.toThrow('aborted by the test');
    expect(theUpload().storedBytes).toBe(CHUNK);

    const second = first.restarted();
    const outcome = await publisher().publish(request(), second.state, second);

    expect(outcome.status).toBe('published');
    const upload = theUpload(); // one init in all
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes).toBe(media.size);
    expect(simulator.uploads.posts('tiktok')).toHaveLength(1);
  });

  it('a post stuck in processing answers `processing`; a later look finds it published; still one post', async () => {
    simulator.uploads.setFaults('tiktok', { stuckProcessing: true });
    const client = publisher();
    const publishIO = io();

    const outcome = await client.publish(request(), null, publishIO);

    expect(outcome).toMatchObject({ status: 'processing', platformRef: theUpload().id });
    expect(
      publishIO.sleeps.filter((ms) => ms === DEFAULT_PLATFORM_PUBLISHING_SETTINGS.tiktokStatusIntervalMs),
    ).toHaveLength(2);
    simulator.uploads.clearFaults();
    expect(await client.checkProcessing(publishIO.state!, publishIO)).toMatchObject({ status: 'published' });
    expect(simulator.uploads.posts('tiktok')).toHaveLength(1);
  });

  it('authenticate reads the profile and says whether the grant can post', async () => {
    const token = simulator.issueTokens('tiktok', OPEN_ID).accessToken;
    expect(await publisher().authenticate(token, ['user.info.basic', 'video.upload'])).toMatchObject({
      externalAccountId: OPEN_ID,
      displayName: 'Creator',
      canPublish: true,
      missingScopes: ['video.publish'],
    });
    expect(await publisher().authenticate(token, ['user.info.basic'])).toMatchObject({
      canPublish: false,
      missingScopes: ['video.publish', 'video.upload'],
      reason: expect.stringContaining('video.publish'),
    });
  });

  describe('the simulator refuses what the Media Transfer Guide forbids', () => {
    const init = (sourceInfo: Record<string, unknown>) =>
      fetch(`${simulator.baseUrlFor('tiktok')}/v2/post/publish/inbox/video/init/`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${simulator.issueTokens('tiktok', OPEN_ID).accessToken}`,
          'content-type': 'application/json; charset=UTF-8',
        },
        body: JSON.stringify({ source_info: { source: 'FILE_UPLOAD', ...sourceInfo } }),
      });

    it.each([
      [
        'total_chunk_count rounded up',
        { video_size: 50_000_123, chunk_size: 10_000_000, total_chunk_count: 6 },
      ],
      ['a chunk under 5 MB', { video_size: 20_000_000, chunk_size: 4_000_000, total_chunk_count: 5 }],
      ['a small video in pieces', { video_size: 4_000_000, chunk_size: 2_000_000, total_chunk_count: 2 }],
    ])('%s: 400 invalid_params "The chunk size is invalid"', async (_name, sourceInfo) => {
      const answer = await init(sourceInfo);
      expect(answer.status).toBe(400);
      const body = (await answer.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_params');
      expect(body.error.message).toContain('The chunk size is invalid');
    });

    it('a chunk out of order is 416', async () => {
      const answer = await init({ video_size: 10_000_000, chunk_size: 5_000_000, total_chunk_count: 2 });
      const { data } = (await answer.json()) as { data: { upload_url: string } };
      const second = await fetch(data.upload_url, {
        method: 'PUT',
        headers: { 'content-type': 'video/mp4', 'content-range': 'bytes 5000000-9999999/10000000' },
        body: new Uint8Array(5_000_000),
      });
      expect(second.status).toBe(416);
    });
  });
});

describe('TikTok per-token limits, on a clock shared with the simulator', () => {
  it('seven direct posts in a minute: the seventh init waits for the window instead of being refused', async () => {
    const clock = new ManualClock(Date.parse('2026-12-02T10:00:00Z'));
    const simulator = await startTestSimulator({ clock });
    const media = await makeTestMedia(1_000_000);
    try {
      simulator.seedAccount('tiktok', { externalAccountId: OPEN_ID });
      const client = new TikTokPublisher(
        { baseUrl: simulator.baseUrlFor('tiktok') },
        { timeoutMs: 5_000 },
        {
          ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
          tiktokStatusLooks: 5,
        },
      );
      const token = simulator.issueTokens('tiktok', OPEN_ID).accessToken;
      const waits: number[] = [];
      for (let i = 0; i < 7; i++) {
        const publishIO = new MemoryPublishIO(media, token, () => token);
        publishIO.now = () => clock.now();
        publishIO.sleep = async (ms) => {
          waits.push(ms);
          clock.advance(ms);
        };
        const outcome = await client.publish(
          {
            title: `post ${i}`,
            description: null,
            privacy: null,
            mode: 'direct',
            options: {},
            totalBytes: media.size,
            contentType: 'video/mp4',
            mediaUrl: null,
          },
          null,
          publishIO,
        );
        expect(outcome.status).toBe('published');
      }
      expect(simulator.uploads.uploads('tiktok')).toHaveLength(7);
      expect(simulator.uploads.posts('tiktok')).toHaveLength(7);
      expect(simulator.uploads.rateLimitRefusals).toBe(0);
      // Six inits fit in the first minute; the seventh waited for the oldest to leave the window.
      expect(waits.some((ms) => ms > DEFAULT_PLATFORM_PUBLISHING_SETTINGS.tiktokStatusIntervalMs)).toBe(true);
    } finally {
      await simulator.close();
      await media.dispose();
    }
  });
});
