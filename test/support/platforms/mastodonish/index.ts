import { defaultEnvNames, type PlatformDefinition } from '../../../../src/platforms/platform.js';
import { MASTODONISH_CAPABILITIES, MastodonishProvider } from './oauthClient.js';
import { mastodonishRoutes } from './simulatorRoutes.js';

/** The whole throwaway fourth platform: what the registry needs to know of it, from this folder. */
export const mastodonish: PlatformDefinition = {
  name: 'mastodonish',
  label: 'Mastodonish',
  logoLetters: 'M',
  env: defaultEnvNames('mastodonish'),
  capabilities: MASTODONISH_CAPABILITIES,
  createOAuthClient: (settings, http) => new MastodonishProvider(settings, http),
  simulator: {
    routes: mastodonishRoutes,
    defaultScopes: ['read', 'write'],
    defaultConsent: { externalAccountId: '109000000000000001', displayName: 'sandbox_mastodonish_user' },
    tokenPrefixes: { access: 'mst_at_', refresh: 'mst_rt_', code: 'mst_c_' },
  },
  sandbox: {
    client: { clientId: 'sandbox-mastodonish-app', clientSecret: 'sandbox-mastodonish-secret' },
    sampleAccessExpiresInMs: -1000,
  },
};
