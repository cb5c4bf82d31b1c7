import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../domain/clock.js';
import { followAuthorizeRedirect } from './consentFlow.js';
import { seededRandom } from './faults.js';
import { type ProviderSimulator, startProviderSimulator } from './simulator.js';

const CLIENTS = {
  tiktok: { clientId: 'tt-key', clientSecret: 'tt-secret' },
  instagram: { clientId: 'ig-app', clientSecret: 'ig-secret' },
  youtube: { clientId: 'g-client', clientSecret: 'g-secret' },
};
const REDIRECT = 'https://app.example/cb';

function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

describe('provider simulator', () => {
  let simulator: ProviderSimulator;
  const clock = new ManualClock();

  beforeAll(async () => {
    simulator = await startProviderSimulator({ clock, clients: CLIENTS });
  });
  afterAll(() => simulator.close());

  function tiktokRefresh(refreshToken: string): Promise<Response> {
    return fetch(
      `${simulator.baseUrlFor('tiktok')}/v2/oauth/token/`,
      form({
        client_key: CLIENTS.tiktok.clientId,
        client_secret: CLIENTS.tiktok.clientSecret,
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }),
    );
  }

  describe('authorize endpoints', () => {
    function authorizeUrl(path: string, params: Record<string, string>): URL {
      const url = new URL(path);
      for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
      return url;
    }

    it('redirects a denial the TikTok way: error=access_denied with error_description and state', async () => {
      simulator.queueConsent('tiktok', { externalAccountId: 'x', deny: true });
      const redirect = await followAuthorizeRedirect(
        authorizeUrl(`${simulator.baseUrlFor('tiktok')}/v2/auth/authorize/`, {
          client_key: CLIENTS.tiktok.clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'user.info.basic',
          state: 'st-deny',
        }),
      );
      expect(redirect).toMatchObject({ error: 'access_denied', state: 'st-deny', code: null });
      expect(redirect.errorDescription).toBeTruthy();
    });

    it('redirects a denial the Instagram way: error_reason=user_denied, and #_ at the end', async () => {
      const redirect = await followAuthorizeRedirect(
        authorizeUrl(`${simulator.baseUrlFor('instagram')}/oauth/authorize`, {
          client_id: CLIENTS.instagram.clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'instagram_business_basic',
          state: 'st-ig',
          sim_deny: '1',
        }),
      );
      expect(redirect).toMatchObject({ error: 'access_denied', state: 'st-ig' });
      expect(redirect.location.searchParams.get('error_reason')).toBe('user_denied');
      expect(redirect.location.hash).toBe('#_');
    });

    it('lets the sandbox user pick the account with sim_account on the authorize URL', async () => {
      const redirect = await followAuthorizeRedirect(
        authorizeUrl(`${simulator.baseUrlFor('youtube')}/o/oauth2/v2/auth`, {
          client_id: CLIENTS.youtube.clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          scope: 'https://www.googleapis.com/auth/youtube',
          access_type: 'offline',
          prompt: 'consent',
          state: 's',
          sim_account: 'UCpicked',
          sim_name: 'Picked',
        }),
      );
      const response = await fetch(
        `${simulator.baseUrlFor('youtube')}/token`,
        form({
          code: redirect.code!,
          client_id: CLIENTS.youtube.clientId,
          client_secret: CLIENTS.youtube.clientSecret,
          redirect_uri: REDIRECT,
          grant_type: 'authorization_code',
        }),
      );
      const tokens = (await response.json()) as { access_token: string };
      const channels = await fetch(
        `${simulator.baseUrlFor('youtube')}/youtube/v3/channels?part=id,snippet&mine=true`,
        {
          headers: { authorization: `Bearer ${tokens.access_token}` },
        },
      );
      const body = (await channels.json()) as { items: Array<{ id: string; snippet: { title: string } }> };
      expect(body.items[0]).toMatchObject({ id: 'UCpicked', snippet: { title: 'Picked' } });
    });

    it('gives Google refresh tokens only with access_type=offline, and without prompt=consent only the first time', async () => {
      async function exchange(extra: Record<string, string>): Promise<Record<string, unknown>> {
        simulator.queueConsent('youtube', { externalAccountId: 'UCoffline' });
        const redirect = await followAuthorizeRedirect(
          authorizeUrl(`${simulator.baseUrlFor('youtube')}/o/oauth2/v2/auth`, {
            client_id: CLIENTS.youtube.clientId,
            redirect_uri: REDIRECT,
            response_type: 'code',
            scope: 'https://www.googleapis.com/auth/youtube',
            state: 's',
            ...extra,
          }),
        );
        const response = await fetch(
          `${simulator.baseUrlFor('youtube')}/token`,
          form({
            code: redirect.code!,
            client_id: CLIENTS.youtube.clientId,
            client_secret: CLIENTS.youtube.clientSecret,
            redirect_uri: REDIRECT,
            grant_type: 'authorization_code',
          }),
        );
        return (await response.json()) as Record<string, unknown>;
      }
      expect(await exchange({ access_type: 'offline' })).toHaveProperty('refresh_token');
      expect(await exchange({ access_type: 'offline' })).not.toHaveProperty('refresh_token');
      expect(await exchange({ access_type: 'offline', prompt: 'consent' })).toHaveProperty('refresh_token');
      expect(await exchange({ prompt: 'consent' })).not.toHaveProperty('refresh_token');
    });

    it('shows an error page instead of redirecting when the client id is unknown', async () => {
      const response = await fetch(
        authorizeUrl(`${simulator.baseUrlFor('tiktok')}/v2/auth/authorize/`, {
          client_key: 'someone-else',
          redirect_uri: REDIRECT,
          response_type: 'code',
          state: 's',
        }),
        { redirect: 'manual' },
      );
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    });
  });

  describe('refresh counters', () => {
    it('counts every call that reached the refresh endpoint per account, failed ones included', async () => {
      simulator.resetCounters();
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'count-me' });
      simulator.faults.set('tiktok', { failNext: 1 });
      expect((await tiktokRefresh(seeded.refreshToken!)).status).toBe(503);
      const ok = (await (await tiktokRefresh(seeded.refreshToken!)).json()) as { refresh_token: string };
      // The spent token is refused, and still counted: that is how a double refresh shows up.
      const reused = (await (await tiktokRefresh(seeded.refreshToken!)).json()) as { error: string };
      expect(ok.refresh_token).toBeTruthy();
      expect(reused.error).toBe('invalid_grant');
      expect(simulator.refreshCalls('tiktok', 'count-me')).toBe(3);
      expect(simulator.totalRefreshCalls('tiktok')).toBe(3);
      expect(simulator.totalRefreshCalls()).toBe(3);
      expect(simulator.totalRefreshCalls('youtube')).toBe(0);
      expect(
        simulator.refreshLog('tiktok').map(({ fault, status, error }) => ({ fault, status, error })),
      ).toEqual([
        { fault: 'fail', status: 503, error: 'server_error' },
        { fault: null, status: 200, error: null },
        { fault: null, status: 200, error: 'invalid_grant' },
      ]);
    });

    it('does not count code exchanges or profile calls as refreshes', async () => {
      simulator.resetCounters();
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'profile-only' });
      await fetch(`${simulator.baseUrlFor('tiktok')}/v2/user/info/?fields=open_id`, {
        headers: { authorization: `Bearer ${seeded.accessToken}` },
      });
      expect(simulator.totalRefreshCalls()).toBe(0);
    });
  });

  describe('TikTok wire format', () => {
    it('answers OAuth errors with HTTP 200 by default, as TikTok may, and with the status set otherwise', async () => {
      const first = await tiktokRefresh('rft.unknown');
      expect(first.status).toBe(200);
      expect(await first.json()).toMatchObject({ error: 'invalid_grant', log_id: expect.any(String) });
      simulator.settings.tiktokOAuthErrorStatus = 400;
      try {
        expect((await tiktokRefresh('rft.unknown')).status).toBe(400);
      } finally {
        simulator.settings.tiktokOAuthErrorStatus = 200;
      }
    });

    it('rejects an access token after it expires, by the simulator clock', async () => {
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'expiring' });
      expect(simulator.isAccessTokenValid('tiktok', seeded.accessToken)).toBe(true);
      clock.advance(7200_000);
      expect(simulator.isAccessTokenValid('tiktok', seeded.accessToken)).toBe(false);
      const response = await fetch(`${simulator.baseUrlFor('tiktok')}/v2/user/info/?fields=open_id`, {
        headers: { authorization: `Bearer ${seeded.accessToken}` },
      });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: { code: 'access_token_invalid' } });
    });
  });

  describe('faults', () => {
    it('fails the next n requests and then answers normally', async () => {
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'fail-two' });
      simulator.faults.set('tiktok', { failNext: 2, status: 502 });
      expect((await tiktokRefresh(seeded.refreshToken!)).status).toBe(502);
      expect((await tiktokRefresh(seeded.refreshToken!)).status).toBe(502);
      expect((await tiktokRefresh(seeded.refreshToken!)).status).toBe(200);
      simulator.faults.clear();
    });

    it('rate limits with the platform format and Retry-After', async () => {
      simulator.faults.set('youtube', { rateLimitNext: 1, retryAfterSeconds: 9 });
      const response = await fetch(
        `${simulator.baseUrlFor('youtube')}/token`,
        form({ grant_type: 'refresh_token' }),
      );
      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('9');
      expect(await response.json()).toMatchObject({ error: { status: 'RESOURCE_EXHAUSTED' } });
      simulator.faults.clear();
    });

    it('hits only the routes named in the plan', async () => {
      const seeded = simulator.seedAccount('tiktok', { externalAccountId: 'profile-fault' });
      simulator.faults.set('tiktok', { failNext: 5, routes: ['profile'] });
      expect((await tiktokRefresh(seeded.refreshToken!)).status).toBe(200);
      const profile = await fetch(`${simulator.baseUrlFor('tiktok')}/v2/user/info/?fields=open_id`, {
        headers: { authorization: `Bearer ${seeded.accessToken}` },
      });
      expect(profile.status).toBe(503);
      simulator.faults.clear();
    });

    it('hangs without answering until the client gives up', async () => {
      simulator.faults.set('instagram', { hangNext: 1, hangMs: 10_000 });
      const error = await fetch(`${simulator.baseUrlFor('instagram')}/me?fields=user_id`, {
        signal: AbortSignal.timeout(100),
      }).catch((e: Error) => e);
      expect((error as Error).name).toBe('TimeoutError');
      simulator.faults.clear();
    });

    it('replays the same probabilistic faults from the same seed', async () => {
      async function run(seed: number): Promise<number[]> {
        const sim = await startProviderSimulator({ random: seededRandom(seed) });
        try {
          sim.faults.set('youtube', { errorRate: 0.5 });
          const statuses: number[] = [];
          for (let i = 0; i < 12; i++) {
            const response = await fetch(`${sim.baseUrlFor('youtube')}/revoke`, form({ token: 'nothing' }));
            statuses.push(response.status);
          }
          return statuses;
        } finally {
          await sim.close();
        }
      }
      const first = await run(42);
      expect(await run(42)).toEqual(first);
      expect(first).toContain(503);
      expect(first).toContain(400);
    });
  });

  it('answers 404 outside the three platform prefixes', async () => {
    expect((await fetch(`${simulator.url}/mastodon/oauth/token`)).status).toBe(404);
    expect((await fetch(`${simulator.baseUrlFor('tiktok')}/v1/oauth/token`)).status).toBe(404);
  });

  it('closes promptly even while a request hangs', async () => {
    const sim = await startProviderSimulator({ latencyMs: 1 });
    sim.faults.set('youtube', { hangNext: 1, hangMs: 60_000 });
    const pending = fetch(`${sim.baseUrlFor('youtube')}/revoke`, form({ token: 't' })).catch(() => 'dropped');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await sim.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await pending).toBe('dropped');
  });
});

describe('the upload benchmark baseline (not a platform)', () => {
  let simulator: ProviderSimulator;
  beforeAll(async () => {
    simulator = await startProviderSimulator({ clients: CLIENTS });
  });
  afterAll(() => simulator.close());

  it('consumes a streamed PUT to /_baseline/sink and answers its size and SHA-256', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const answer = await fetch(`${simulator.url}/_baseline/sink`, { method: 'PUT', body });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('answers nothing else there: a GET is the unknown-prefix 404', async () => {
    const answer = await fetch(`${simulator.url}/_baseline/sink`);
    expect(answer.status).toBe(404);
  });
});
