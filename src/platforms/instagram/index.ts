import type { PlatformDefinition } from '../platform.js';
import { defaultEnvNames } from '../platform.js';
import { readInstagramUsageHint } from '../rateLimitHints.js';
import {
  INSTAGRAM_CAPABILITIES,
  INSTAGRAM_DEFAULT_GRAPH_VERSION,
  INSTAGRAM_GRAPH_VERSION_PATTERN,
  InstagramProvider,
} from './oauthClient.js';
import { InstagramPublisher } from './publishing.js';
import { instagramRoutes } from './simulatorRoutes.js';
import { instagramUploadRoutes } from './uploadSimulator.js';

export const instagram: PlatformDefinition = {
  name: 'instagram',
  label: 'Instagram',
  logoLetters: 'IG',
  env: {
    ...defaultEnvNames('instagram'),
    apiVersion: {
      name: 'INSTAGRAM_GRAPH_VERSION',
      fallback: INSTAGRAM_DEFAULT_GRAPH_VERSION,
      pattern: INSTAGRAM_GRAPH_VERSION_PATTERN,
      example: 'v26.0',
    },
  },
  capabilities: INSTAGRAM_CAPABILITIES,
  createOAuthClient: (settings, http) => new InstagramProvider(settings, http),
  createPublisher: (settings, http, config) => new InstagramPublisher(settings, http, config),
  rateLimitHintReader: readInstagramUsageHint,
  simulator: {
    routes: instagramRoutes,
    uploadRoutes: instagramUploadRoutes,
    defaultScopes: ['instagram_business_basic', 'instagram_business_content_publish'],
    // Instagram's id is 17 digits, beyond 2^53, like real ones.
    defaultConsent: { externalAccountId: '17841400000000001', displayName: 'sandbox_instagram_user' },
    tokenPrefixes: { access: 'IGAA', refresh: 'IGRT', code: 'AQ' },
  },
  sandbox: {
    client: { clientId: 'sandbox-instagram-app', clientSecret: 'sandbox-instagram-secret' },
    // Instagram cannot refresh an expired token (the user would have to log in again): its
    // 59-day-old token has one minute left instead, past its keep-alive time (57 days), so the
    // background refresher's first pass refreshes it a few seconds after start.
    sampleAccessExpiresInMs: 60_000,
    // Numeric like a real Instagram user id, and not the default consent's.
    sampleExternalAccountId: '17841400000000999',
  },
};
