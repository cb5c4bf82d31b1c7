import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ProviderResponseInvalid, TransientProviderError } from '../domain/errors.js';
import { type ProviderSimulator, startProviderSimulator } from '../simulator/simulator.js';
import { parseRetryAfter, parseSuccessBody, resolveEndpoint, sendProviderRequest } from './providerHttp.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delta-seconds as milliseconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
  });

  it('reads an HTTP date as the time left from now', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
  });

  it('never returns a negative wait for a date in the past', () => {
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });

  it('returns null when the header is absent or unreadable', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter('-5', now)).toBeNull();
  });
});

describe('resolveEndpoint', () => {
  it('uses the real URL without a base URL', () => {
    expect(resolveEndpoint(null, 'https://open.tiktokapis.com/v2/oauth/token/').toString()).toBe(
      'https://open.tiktokapis.com/v2/oauth/token/',
    );
  });

  it('keeps the real path and query under a base URL, with or without a trailing slash', () => {
    for (const base of ['http://127.0.0.1:9999/tiktok', 'http://127.0.0.1:9999/tiktok/']) {
      expect(
        resolveEndpoint(base, 'https://open.tiktokapis.com/v2/user/info/?fields=open_id').toString(),
      ).toBe('http://127.0.0.1:9999/tiktok/v2/user/info/?fields=open_id');
    }
  });
});

/** A platform that answers every request with `answer`, for the length of `use`. */
async function withPlatform<T>(
  answer: (request: IncomingMessage, response: ServerResponse) => void,
  use: (baseUrl: string) => Promise<T>,
): Promise<T> {
  const server = createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('sendProviderRequest', () => {
  let simulator: ProviderSimulator;
  let closedPortUrl: URL;

  beforeAll(async () => {
    simulator = await startProviderSimulator();
    // A port that was just free: connecting to it is refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPortUrl = new URL(`http://127.0.0.1:${(probe.address() as AddressInfo).port}/v2/oauth/token/`);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
  afterAll(() => simulator.close());

  it('turns a platform that does not answer within the timeout into TransientProviderError("timeout")', async () => {
    simulator.faults.set('youtube', { hangNext: 1, hangMs: 5_000 });
    const started = Date.now();
    const error = await sendProviderRequest(
      'youtube',
      { timeoutMs: 150 },
      {
        method: 'POST',
        url: new URL(`${simulator.baseUrlFor('youtube')}/token`),
        form: { grant_type: 'refresh_token', refresh_token: 'secret-refresh-token' },
        label: 'Google token refresh',
      },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(TransientProviderError);
    expect(error.providerErrorCode).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(JSON.stringify(error.toJSON())).not.toContain('secret-refresh-token');
  });

  it('turns a refused connection into TransientProviderError without the URL (it may hold a token)', async () => {
    const url = new URL(closedPortUrl);
    url.searchParams.set('access_token', 'IGAAsecret');
    const error = await sendProviderRequest(
      'instagram',
      { timeoutMs: 1000 },
      {
        method: 'GET',
        url,
        label: 'Instagram token refresh',
      },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(TransientProviderError);
    expect(error.providerErrorCode).toBe('network_error');
    expect(error.message).not.toContain('IGAAsecret');
    expect(String(error.cause)).not.toContain('IGAAsecret');
  });

  it('times out a platform that sends its headers and then stalls mid-body', async () => {
    const stalling = (_request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      response.write('{"access_token":"act.partial');
    };
    const error = await withPlatform(stalling, (baseUrl) =>
      sendProviderRequest(
        'tiktok',
        { timeoutMs: 150 },
        {
          method: 'POST',
          url: new URL(`${baseUrl}/v2/oauth/token/`),
          form: {},
          label: 'TikTok token refresh',
        },
      ).catch((e) => e),
    );
    expect(error).toBeInstanceOf(TransientProviderError);
    expect(error.providerErrorCode).toBe('timeout');
    expect(JSON.stringify(error.toJSON())).not.toContain('act.partial');
  });

  it('keeps an answer larger than any token endpoint sends by its status only, without its body', async () => {
    const flooding = (_request: IncomingMessage, response: ServerResponse) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(Buffer.alloc(2 * 1024 * 1024, 0x20));
    };
    const answer = await withPlatform(flooding, (baseUrl) =>
      sendProviderRequest(
        'youtube',
        { timeoutMs: 5_000 },
        { method: 'POST', url: new URL(`${baseUrl}/token`), form: {}, label: 'Google token refresh' },
      ),
    );
    // A 2xx without a readable body: the provider's parse turns it into ProviderResponseInvalid,
    // which a rotating platform never retries (the refresh token may have been spent).
    expect(answer).toMatchObject({ status: 200, text: '', json: undefined });
  });

  it('returns every answer, error statuses included, with the body parsed when it is JSON', async () => {
    const answer = await sendProviderRequest(
      'youtube',
      { timeoutMs: 1000 },
      {
        method: 'POST',
        url: new URL(`${simulator.baseUrlFor('youtube')}/token`),
        form: { grant_type: 'refresh_token', refresh_token: 'unknown', client_id: 'c', client_secret: 's' },
        label: 'Google token refresh',
      },
    );
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: 'invalid_grant',
      error_description: 'Token has been expired or revoked.',
    });
  });
});

describe('parseSuccessBody', () => {
  it('names the failing fields, never their values', () => {
    const schema = z.object({ access_token: z.string(), expires_in: z.number() });
    const error = (() => {
      try {
        parseSuccessBody(
          'tiktok',
          schema,
          { status: 200, json: { access_token: 'act.secret', expires_in: 'soon' } },
          'x',
        );
      } catch (e) {
        return e as ProviderResponseInvalid;
      }
    })();
    expect(error).toBeInstanceOf(ProviderResponseInvalid);
    expect(error?.message).toContain('expires_in');
    expect(error?.message).not.toContain('act.secret');
  });
});
