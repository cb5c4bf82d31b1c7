import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../domain/clock.js';
import { readTikTokRateLimitHint } from '../platforms/rateLimitHints.js';
import { TikTokProvider } from '../platforms/tiktok/oauthClient.js';
import { type ProviderSimulator, startProviderSimulator } from '../simulator/simulator.js';
import { createOutboundGate } from './outboundGate.js';

const CLIENT = { clientId: 'tt-gate-key', clientSecret: 'tt-gate-secret' };
const NOW = Date.parse('2026-12-02T12:00:00Z');

describe("TikTok's x-ratelimit-* headers", () => {
  const headers = (fields: Record<string, string>) => new Headers(fields);

  it.each([
    ['no headers: nothing to slow', {}, null],
    ['plenty left: nothing to slow', { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '300' }, null],
    [
      'spent: wait for the reset (epoch seconds)',
      {
        'x-ratelimit-limit': '600',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(NOW / 1000 + 42),
      },
      NOW + 42_000,
    ],
    [
      'spent, reset in seconds from now',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '30' },
      NOW + 30_000,
    ],
    ['spent, no reset: the documented one-minute window', { 'x-ratelimit-remaining': '0' }, NOW + 60_000],
    [
      'nearly spent: the calls left are spread over the time to the reset',
      { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '9', 'x-ratelimit-reset': '50' },
      NOW + 5_000,
    ],
  ])('%s', (_rule, fields, expected) => {
    expect(readTikTokRateLimitHint(headers(fields), NOW)).toBe(expected);
  });
});

describe('outbound gate', () => {
  let simulator: ProviderSimulator;
  const clock = new ManualClock(NOW);

  beforeAll(async () => {
    simulator = await startProviderSimulator({
      clock,
      clients: { tiktok: CLIENT },
      settings: { tiktokRateLimit: { limit: 2, windowSeconds: 60 } },
    });
  });
  afterAll(() => simulator.close());

  it('holds the next TikTok call until the reset once the headers say the limit is spent, before any 429', async () => {
    const slept: number[] = [];
    let wall = NOW;
    const gate = createOutboundGate(
      {},
      {
        wallNow: () => wall,
        sleep: async (ms) => {
          slept.push(ms);
          wall += ms;
        },
      },
    );
    const provider = new TikTokProvider(
      { ...CLIENT, redirectUri: 'https://app.example/cb', baseUrl: simulator.baseUrlFor('tiktok') },
      { timeoutMs: 2000, observeAnswer: (name, answerHeaders) => gate.observe(name, answerHeaders) },
    );
    for (const id of ['gate-1', 'gate-2']) {
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: id });
      (await gate.acquire('tiktok'))();
      await provider.refreshAccessToken({ accessToken: null, refreshToken: seeded.refreshToken });
    }
    expect(slept).toEqual([]);
    // The second answer said remaining 0: the third call waits for the window's reset.
    (await gate.acquire('tiktok'))();
    expect(slept).toEqual([60_000]);
    expect(simulator.refreshLog('tiktok').map((entry) => entry.status)).toEqual([200, 200]);
  });
});
