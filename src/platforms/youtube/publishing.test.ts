import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestMedia, memoryIO, type TestMedia } from '../../../test/support/memoryPublishIO.js';
import { startTestSimulator } from '../../../test/support/simulator.js';
import { ReauthorizationRequired } from '../../domain/errors.js';
import type { PublishRequest } from '../../publishing/platformPublisher.js';
import type { ProviderSimulator } from '../../simulator/simulator.js';
import { DEFAULT_PLATFORM_PUBLISHING_SETTINGS } from '../publishingSettings.js';
import { YouTubePublisher } from './publishing.js';
import { nextPacificMidnight } from './quotaReset.js';
import { expireYouTubeSession } from './uploadSimulator.js';

const CHANNEL = 'UCpublishing0000000000001';
const CHUNK = 512 * 1024;
const SIZE = 6 * CHUNK + 1000; // seven chunks, the last a short one

describe('YouTube publishing client (resumable videos.insert) against the simulator', () => {
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
    simulator.seedAccount('youtube', { externalAccountId: CHANNEL, displayName: 'Publishing channel' });
  });
  afterEach(() => simulator.uploads.clearFaults());

  const publisher = () =>
    new YouTubePublisher(
      { baseUrl: simulator.baseUrlFor('youtube') },
      { timeoutMs: 5_000 },
      {
        ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS,
        youtubeChunkBytes: CHUNK,
      },
    );
  const request = (overrides: Partial<PublishRequest> = {}): PublishRequest => ({
    title: 'A video',
    description: 'Its description',
    privacy: 'private',
    mode: null,
    options: {},
    totalBytes: media.size,
    contentType: 'video/mp4',
    mediaUrl: null,
    ...overrides,
  });
  const io = () => memoryIO(simulator, 'youtube', CHANNEL, media);
  const theUpload = () => {
    const uploads = simulator.uploads.uploads('youtube');
    expect(uploads).toHaveLength(1);
    return uploads[0]!;
  };

  it('uploads in chunks; the bytes YouTube received hash to the file; one video; processing, then published', async () => {
    const client = publisher();
    const publishIO = io();
    let receivedAtFirstSave = -1;
    const save = publishIO.saveState.bind(publishIO);
    publishIO.saveState = async (state, progress) => {
      if (receivedAtFirstSave < 0) receivedAtFirstSave = theUpload().receivedBytes;
      return save(state, progress);
    };

    const outcome = await client.publish(request(), null, publishIO);

    expect(outcome).toMatchObject({ status: 'processing', platformPostId: expect.any(String) });
    const upload = theUpload();
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes).toBe(media.size);
    expect(upload.byteRequests).toBe(7);
    expect(receivedAtFirstSave).toBe(0); // the session URI was durable before the first byte
    expect(publishIO.saves[0]?.state).toMatchObject({ sessionUri: expect.stringContaining('upload_id=') });
    expect(simulator.uploads.posts('youtube', CHANNEL)).toHaveLength(1);

    const state = publishIO.state!;
    expect(await client.checkProcessing(state, publishIO)).toMatchObject({ status: 'processing' });
    expect(await client.checkProcessing(state, publishIO)).toMatchObject({
      status: 'published',
      platformPostId: outcome.status === 'processing' ? outcome.platformPostId : null,
    });
  });

  it('a connection cut mid-chunk is followed by the probe, and the upload resumes at the byte YouTube confirms', async () => {
    simulator.uploads.setFaults('youtube', { cutAfterBytes: 2 * CHUNK + 12_345 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('processing');
    const upload = theUpload();
    expect(upload.sha256).toBe(media.sha256);
    // YouTube kept the bytes before the cut: nothing was sent twice.
    expect(upload.receivedBytes).toBe(media.size);
    expect(publishIO.progress).toContain(2 * CHUNK + 12_345);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a 5xx on a chunk re-sends at most that one chunk', async () => {
    simulator.uploads.setFaults('youtube', { routes: ['chunk'], skip: 3, failNext: 1, status: 503 });

    const outcome = await publisher().publish(request(), null, io());

    expect(outcome.status).toBe('processing');
    const upload = theUpload();
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes - media.size).toBeLessThanOrEqual(CHUNK);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a 5xx on the first chunk: the probe answers without Range, and the upload starts again at byte 0', async () => {
    simulator.uploads.setFaults('youtube', { routes: ['chunk'], failNext: 1, status: 500 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('processing');
    expect(publishIO.progress[0]).toBe(0); // what the probe confirmed: nothing
    expect(theUpload().sha256).toBe(media.sha256);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('authenticate reads the channel; canPublish needs youtube.upload or youtube', async () => {
    const token = simulator.issueTokens('youtube', CHANNEL).accessToken;
    expect(
      await publisher().authenticate(token, ['https://www.googleapis.com/auth/youtube.readonly']),
    ).toMatchObject({
      externalAccountId: CHANNEL,
      displayName: 'Publishing channel',
      canPublish: false,
      missingScopes: ['https://www.googleapis.com/auth/youtube.upload'],
    });
    expect(await publisher().authenticate(token, ['https://www.googleapis.com/auth/youtube'])).toMatchObject({
      canPublish: true,
      missingScopes: [],
    });
  });

  it('a 401 mid-upload: exactly one refresh, that chunk again, one video', async () => {
    simulator.uploads.setFaults('youtube', { routes: ['chunk'], skip: 2, unauthorizedNext: 1 });
    const publishIO = io();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome.status).toBe('processing');
    expect(publishIO.refreshes).toBe(1);
    expect(theUpload().sha256).toBe(media.sha256);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a second refusal after the refresh is ReauthorizationRequired', async () => {
    simulator.uploads.setFaults('youtube', { routes: ['chunk'], skip: 1, unauthorizedNext: 2 });
    const publishIO = io();

    await expect(publisher().publish(request(), null, publishIO)).rejects.toBeInstanceOf(
      ReauthorizationRequired,
    );
    expect(publishIO.refreshes).toBe(1);
    expect(simulator.uploads.posts('youtube')).toHaveLength(0);
  });

  it('quotaExceeded is final, with a retry at the next midnight Pacific, and sends no byte', async () => {
    simulator.uploads.setFaults('youtube', { quotaExhausted: true });
    const publishIO = io();
    const before = Date.now();

    const outcome = await publisher().publish(request(), null, publishIO);

    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'quotaExceeded' });
    if (outcome.status !== 'failed') throw new Error('unreachable');
    expect(outcome.retryAt).toBeGreaterThanOrEqual(nextPacificMidnight(before));
    expect(outcome.retryAt).toBeLessThanOrEqual(nextPacificMidnight(Date.now()));
    expect(simulator.uploads.uploads('youtube')).toHaveLength(0);
    expect(publishIO.saves).toHaveLength(0);
  });

  it('uploadLimitExceeded (the channel cap) is final too, with the same retry time', async () => {
    simulator.uploads.setFaults('youtube', { refuseInit: 'uploadLimitExceeded' });
    const outcome = await publisher().publish(request(), null, io());
    expect(outcome).toMatchObject({
      status: 'failed',
      errorCode: 'uploadLimitExceeded',
      retryAt: expect.any(Number),
    });
  });

  it('after a crash mid-upload, a new client with the saved state probes and resumes: one session, one video', async () => {
    const first = io();
    first.onProgress = (bytes) => {
      if (bytes >= 3 * CHUNK) first.abort();
    };
    await expect(publisher().publish(request(), null, first)).rejects.toThrow('aborted by the test');
    const partial = theUpload().storedBytes;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(media.size);

    const second = first.restarted();
    const outcome = await publisher().publish(request(), second.state, second);

    expect(outcome.status).toBe('processing');
    const upload = theUpload(); // no second session
    expect(upload.sha256).toBe(media.sha256);
    expect(upload.receivedBytes).toBe(media.size);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('after a crash once the last chunk was accepted, the probe finds the video: never uploaded again', async () => {
    const first = io();
    const outcome = await publisher().publish(request(), null, first);
    // The state as it was saved before the last chunk left (no video id known yet).
    const beforeLastAnswer = first.saves.filter((save) => !('videoId' in save.state)).at(-1)!.state;
    expect(beforeLastAnswer).toMatchObject({ finalChunkSent: true });

    const second = first.restarted();
    const again = await publisher().publish(request(), beforeLastAnswer, second);

    expect(again).toEqual(outcome);
    expect(theUpload().receivedBytes).toBe(media.size);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a session that expired before its last chunk is replaced by a new one; still one video', async () => {
    const first = io();
    first.onProgress = (bytes) => {
      if (bytes >= CHUNK) first.abort();
    };
    await expect(publisher().publish(request(), null, first)).rejects.toThrow();
    expireYouTubeSession(theUpload());

    const second = first.restarted();
    const outcome = await publisher().publish(request(), second.state, second);

    expect(outcome.status).toBe('processing');
    const uploads = simulator.uploads.uploads('youtube');
    expect(uploads).toHaveLength(2);
    expect(uploads[1]!.sha256).toBe(media.sha256);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a session that expired after its last chunk was sent is not started again (the video may exist)', async () => {
    const first = io();
    await publisher().publish(request(), null, first);
    const beforeLastAnswer = first.saves.filter((save) => !('videoId' in save.state)).at(-1)!.state;
    expireYouTubeSession(theUpload());

    const outcome = await publisher().publish(request(), beforeLastAnswer, first.restarted());

    expect(outcome).toMatchObject({ status: 'failed', errorCode: 'youtube_upload_unconfirmed' });
    expect(simulator.uploads.uploads('youtube')).toHaveLength(1);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('a last chunk cut midway: once the probe shows bytes missing, a session that expires is replaced (no video can exist)', async () => {
    // The default chunk (100 MiB) holds the whole file: the flag "final chunk sent" is set before the
    // first byte leaves, and must fall again when YouTube confirms less than everything.
    const wholeFile = new YouTubePublisher(
      { baseUrl: simulator.baseUrlFor('youtube') },
      { timeoutMs: 5_000 },
      { ...DEFAULT_PLATFORM_PUBLISHING_SETTINGS, backoffBaseMs: 1, backoffMaxMs: 5 },
    );
    simulator.uploads.setFaults('youtube', { cutAfterBytes: Math.floor(media.size / 2) });
    const first = io();
    first.onProgress = (bytes) => {
      if (bytes < media.size) first.abort(); // a crash right after the probe
    };
    await expect(wholeFile.publish(request(), null, first)).rejects.toThrow('aborted by the test');
    simulator.uploads.clearFaults();
    expireYouTubeSession(theUpload());

    const second = first.restarted();
    const outcome = await wholeFile.publish(request(), second.state, second);

    expect(outcome.status).toBe('processing');
    const uploads = simulator.uploads.uploads('youtube');
    expect(uploads).toHaveLength(2);
    expect(uploads[1]!.sha256).toBe(media.sha256);
    expect(simulator.uploads.posts('youtube')).toHaveLength(1);
  });

  it('the daily upload bucket: once it is spent, the next session is quotaExceeded', async () => {
    simulator.uploads.settings.youtube.dailyUploads = 1;
    try {
      expect((await publisher().publish(request(), null, io())).status).toBe('processing');
      expect(await publisher().publish(request(), null, io())).toMatchObject({
        status: 'failed',
        errorCode: 'quotaExceeded',
      });
    } finally {
      simulator.uploads.settings.youtube.dailyUploads = 100;
    }
  });

  describe('the simulator refuses what the resumable protocol forbids', () => {
    async function session(size: number): Promise<string> {
      const token = simulator.issueTokens('youtube', CHANNEL).accessToken;
      const answer = await fetch(
        `${simulator.baseUrlFor('youtube')}/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json; charset=UTF-8',
            'x-upload-content-length': String(size),
            'x-upload-content-type': 'video/mp4',
          },
          body: JSON.stringify({ snippet: { title: 't' }, status: { privacyStatus: 'private' } }),
        },
      );
      expect(answer.status).toBe(200);
      return answer.headers.get('location')!;
    }
    const put = (uri: string, range: string, body: Uint8Array) =>
      fetch(uri, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${simulator.issueTokens('youtube', CHANNEL).accessToken}`,
          'content-range': range,
        },
        body,
      });

    it('a chunk that is not a multiple of 256 KiB (and not the last) is 400', async () => {
      const uri = await session(1_000_000);
      const answer = await put(uri, 'bytes 0-99999/1000000', new Uint8Array(100_000));
      expect(answer.status).toBe(400);
    });

    it('a chunk that does not start at the byte after the confirmed Range is 400; the probe tells where', async () => {
      const uri = await session(1_000_000);
      expect((await put(uri, 'bytes 0-262143/1000000', new Uint8Array(262_144))).status).toBe(308);
      const skipped = await put(uri, 'bytes 524288-786431/1000000', new Uint8Array(262_144));
      expect(skipped.status).toBe(400);
      const probe = await put(uri, 'bytes */1000000', new Uint8Array(0));
      expect(probe.status).toBe(308);
      expect(probe.headers.get('range')).toBe('bytes=0-262143');
    });
  });
});
