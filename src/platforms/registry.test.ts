import { describe, expect, it } from 'vitest';
import { createProvider, PROVIDER_FACTORIES, PROVIDER_NAMES } from './registry.js';

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
