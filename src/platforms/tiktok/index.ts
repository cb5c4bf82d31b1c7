import type { PlatformDefinition } from '../platform.js';
import { defaultEnvNames } from '../platform.js';
import { readTikTokRateLimitHint } from '../rateLimitHints.js';
import { TIKTOK_CAPABILITIES, TikTokProvider } from './oauthClient.js';
import { TikTokPublisher } from './publishing.js';
import { tiktokRoutes } from './simulatorRoutes.js';
import { tiktokUploadRoutes } from './uploadSimulator.js';

export const tiktok: PlatformDefinition = {
  name: 'tiktok',
  label: 'TikTok',
  logoLetters: 'T',
  // TikTok calls its client id a "client key".
  env: { ...defaultEnvNames('tiktok'), clientId: 'TIKTOK_CLIENT_KEY' },
  capabilities: TIKTOK_CAPABILITIES,
  createOAuthClient: (settings, http) => new TikTokProvider(settings, http),
  createPublisher: (settings, http, config) => new TikTokPublisher(settings, http, config),
  rateLimitHintReader: readTikTokRateLimitHint,
  simulator: {
    routes: tiktokRoutes,
    uploadRoutes: tiktokUploadRoutes,
    defaultScopes: ['user.info.basic', 'video.upload', 'video.publish'],
    defaultConsent: { externalAccountId: '-000sandboxOpenId0001', displayName: 'Sandbox TikTok User' },
    tokenPrefixes: { access: 'act.', refresh: 'rft.', code: 'tc_' },
  },
  sandbox: {
    client: { clientId: 'sandbox-tiktok-key', clientSecret: 'sandbox-tiktok-secret' },
    sampleAccessExpiresInMs: -1000,
  },
};
