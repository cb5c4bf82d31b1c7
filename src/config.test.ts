import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { ConfigurationError } from './domain/errors.js';

describe('loadConfig', () => {
  it('enables a platform only when both its client id and secret are set', () => {
    const config = loadConfig({ TIKTOK_CLIENT_KEY: 'key', TIKTOK_CLIENT_SECRET: 'secret' });
    expect(Object.keys(config.providers)).toEqual(['tiktok']);
    expect(() => loadConfig({ YOUTUBE_CLIENT_ID: 'id' })).toThrow(/must be set together/);
  });

  it('reads <PROVIDER>_BASE_URL without its trailing slash, and rejects a non-URL', () => {
    const config = loadConfig({
      TIKTOK_CLIENT_KEY: 'key',
      TIKTOK_CLIENT_SECRET: 'secret',
      TIKTOK_BASE_URL: 'http://127.0.0.1:4010/tiktok/',
    });
    expect(config.providers.tiktok?.baseUrl).toBe('http://127.0.0.1:4010/tiktok');
    expect(() =>
      loadConfig({ TIKTOK_CLIENT_KEY: 'k', TIKTOK_CLIENT_SECRET: 's', TIKTOK_BASE_URL: 'ftp://x' }),
    ).toThrow(ConfigurationError);
  });

  it('uses the embedded SQLite default without DATABASE_URL and refuses other schemes', () => {
    expect(loadConfig({}).databaseUrl).toBeNull();
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/postgres:\/\//);
  });

  it('refuses a refresh lease shorter than two provider timeouts plus a margin', () => {
    expect(() => loadConfig({ PROVIDER_TIMEOUT_MS: '30000', REFRESH_LEASE_SECONDS: '60' })).toThrow(
      /REFRESH_LEASE_SECONDS \(60\) must be at least/,
    );
    expect(
      loadConfig({ PROVIDER_TIMEOUT_MS: '30000', REFRESH_LEASE_SECONDS: '65' }).refresh.leaseSeconds,
    ).toBe(65);
  });

  it('requires the scopes each platform client asks for by default, YouTube without the full youtube scope', () => {
    const config = loadConfig({});
    expect(config.requiredScopes.tiktok).toEqual(['user.info.basic', 'video.upload', 'video.publish']);
    expect(config.requiredScopes.youtube).toEqual([
      'https://www.googleapis.com/auth/youtube.upload',
      'https://www.googleapis.com/auth/youtube.readonly',
    ]);
    expect(config.requiredScopes.instagram).toEqual([
      'instagram_business_basic',
      'instagram_business_content_publish',
    ]);
  });

  it('reads <PROVIDER>_REQUIRED_SCOPES comma- or space-separated, without duplicates', () => {
    const config = loadConfig({
      TIKTOK_REQUIRED_SCOPES: 'user.info.basic, video.publish,video.publish',
      YOUTUBE_REQUIRED_SCOPES: 'https://www.googleapis.com/auth/youtube.upload  ',
    });
    expect(config.requiredScopes.tiktok).toEqual(['user.info.basic', 'video.publish']);
    expect(config.requiredScopes.youtube).toEqual(['https://www.googleapis.com/auth/youtube.upload']);
  });
});

describe('INSTAGRAM_GRAPH_VERSION (issue 11)', () => {
  const instagram = { INSTAGRAM_CLIENT_ID: 'id', INSTAGRAM_CLIENT_SECRET: 'secret' };

  it('pins the Graph API version: v26.0 unless set, and only Instagram has one', () => {
    const config = loadConfig({ ...instagram, TIKTOK_CLIENT_KEY: 'k', TIKTOK_CLIENT_SECRET: 's' });
    expect(config.providers.instagram?.apiVersion).toBe('v26.0');
    expect(config.providers.tiktok?.apiVersion).toBeUndefined();
    expect(
      loadConfig({ ...instagram, INSTAGRAM_GRAPH_VERSION: 'v25.0' }).providers.instagram?.apiVersion,
    ).toBe('v25.0');
  });

  it('refuses a version Meta would not understand', () => {
    for (const bad of ['25.0', 'v25', 'latest', 'v25.0/']) {
      expect(() => loadConfig({ ...instagram, INSTAGRAM_GRAPH_VERSION: bad })).toThrow(
        /INSTAGRAM_GRAPH_VERSION must look like v26\.0/,
      );
    }
  });
});

/**
 * Issue 10, item 13: plain HTTP in production used to be refused only by `serve` (buildApp), and
 * only for redirect URIs and PUBLIC_BASE_URL: a `worker` with TIKTOK_BASE_URL=http://… sent the
 * client secret and refresh tokens in clear. loadConfig runs for every command.
 */
describe('in production, nothing secret travels over plain HTTP, whatever the command', () => {
  const tiktok = { TIKTOK_CLIENT_KEY: 'key', TIKTOK_CLIENT_SECRET: 'secret' };
  const production = { NODE_ENV: 'production', ...tiktok };

  it('refuses an http:// platform base URL (it receives the client secret and tokens)', () => {
    expect(() => loadConfig({ ...production, TIKTOK_BASE_URL: 'http://tiktok-proxy.internal' })).toThrow(
      /TIKTOK_BASE_URL must be https in production/,
    );
    expect(() => loadConfig({ ...production, TIKTOK_BASE_URL: 'http://tiktok-proxy.internal' })).toThrow(
      ConfigurationError,
    );
  });

  it('allows https, and http on a loopback address (the simulator, a local proxy)', () => {
    for (const baseUrl of [
      'https://tiktok-proxy.internal',
      'http://127.0.0.1:4010/tiktok',
      'http://localhost:4010',
      'http://[::1]:4010',
    ]) {
      expect(loadConfig({ ...production, TIKTOK_BASE_URL: baseUrl }).providers.tiktok?.baseUrl).toBe(baseUrl);
    }
    expect(() => loadConfig({ ...production, TIKTOK_BASE_URL: 'http://127.0.0.1.example.com' })).toThrow(
      ConfigurationError,
    );
  });

  it('refuses an http:// redirect URI, PUBLIC_BASE_URL or WEBHOOK_URL once set', () => {
    expect(() =>
      loadConfig({ ...production, TIKTOK_REDIRECT_URI: 'http://svc.example/oauth/tiktok/callback' }),
    ).toThrow(/TIKTOK_REDIRECT_URI must be https/);
    expect(() => loadConfig({ ...production, PUBLIC_BASE_URL: 'http://svc.example' })).toThrow(
      /PUBLIC_BASE_URL must be https/,
    );
    expect(() =>
      loadConfig({ ...production, WEBHOOK_URL: 'http://backend.example/hooks', WEBHOOK_SECRET: 's' }),
    ).toThrow(/WEBHOOK_URL must be https/);
  });

  it('leaves a command that hands out no links alone when PUBLIC_BASE_URL is not set (serve checks it)', () => {
    expect(loadConfig(production).production).toBe(true);
  });

  it('applies none of this outside production (tests, the sandbox)', () => {
    expect(loadConfig({ ...tiktok, TIKTOK_BASE_URL: 'http://tiktok-proxy.internal' }).production).toBe(false);
  });
});
