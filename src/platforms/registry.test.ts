import { describe, expect, it } from 'vitest';
import {
  createProvider,
  PROVIDER_FACTORIES,
  PROVIDER_NAMES,
  platform,
  platforms,
  registerPlatform,
} from './registry.js';

describe('provider registry', () => {
  it('has a factory for every provider name, and each provider says its own name', () => {
    expect(Object.keys(PROVIDER_FACTORIES).sort()).toEqual([...PROVIDER_NAMES].sort());
    for (const name of PROVIDER_NAMES) {
      const provider = createProvider(
        name,
        { clientId: 'id', clientSecret: 'secret', redirectUri: 'https://app.example/cb', baseUrl: null },
        { timeoutMs: 1000 },
      );
      expect(provider.name).toBe(name);
    }
  });

  it('describes each platform by capabilities, not by name checks elsewhere', () => {
    const http = { timeoutMs: 1000 };
    const settings = { clientId: 'id', clientSecret: 's', redirectUri: null, baseUrl: null };
    expect(createProvider('tiktok', settings, http).capabilities).toMatchObject({
      rotatesRefreshToken: true,
    });
    expect(createProvider('instagram', settings, http).capabilities).toMatchObject({
      refreshesAccessTokenItself: true,
      minimumTokenAgeForRefreshSeconds: 86_400,
      hasRevocationEndpoint: false,
    });
    expect(createProvider('youtube', settings, http).capabilities).toMatchObject({
      refreshTokenIdleLifetimeSeconds: 182 * 86_400,
      scopeSeparator: ' ',
    });
  });
});

describe('platform registry (issue 12)', () => {
  it('keeps every built-in platform in step: its folder names itself, its env names are its own', () => {
    const seen = new Set<string>();
    for (const definition of platforms()) {
      const client = definition.createOAuthClient(
        { clientId: 'id', clientSecret: 's', redirectUri: null, baseUrl: null },
        { timeoutMs: 1000 },
      );
      expect(client.name).toBe(definition.name);
      expect(client.capabilities).toBe(definition.capabilities);
      expect(definition.simulator.routes.provider).toBe(definition.name);
      for (const variable of Object.values(definition.env)) {
        if (typeof variable !== 'string') continue;
        expect(seen.has(variable)).toBe(false);
        seen.add(variable);
      }
    }
    expect(platforms().map((p) => p.name)).toEqual(PROVIDER_NAMES);
  });

  it('refuses a second definition under a registered name, and a name that is not a path segment', () => {
    expect(() => registerPlatform({ ...platform('tiktok') })).toThrow(/already registered/);
    expect(() => registerPlatform({ ...platform('tiktok'), name: 'Tik Tok' })).toThrow(/lower-case/);
    expect(PROVIDER_NAMES).toHaveLength(platforms().length);
  });
});
