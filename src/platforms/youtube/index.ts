import type { PlatformDefinition } from '../platform.js';
import { defaultEnvNames } from '../platform.js';
import { YOUTUBE_CAPABILITIES, YouTubeProvider } from './oauthClient.js';
import { YouTubePublisher } from './publishing.js';
import { youtubeRoutes } from './simulatorRoutes.js';
import { youtubeUploadRoutes } from './uploadSimulator.js';

export const youtube: PlatformDefinition = {
  name: 'youtube',
  label: 'YouTube',
  logoLetters: 'YT',
  env: defaultEnvNames('youtube'),
  capabilities: YOUTUBE_CAPABILITIES,
  createOAuthClient: (settings, http) => new YouTubeProvider(settings, http),
  createPublisher: (settings, http, config) => new YouTubePublisher(settings, http, config),
  simulator: {
    routes: youtubeRoutes,
    uploadRoutes: youtubeUploadRoutes,
    defaultScopes: [
      'https://www.googleapis.com/auth/youtube.upload',
      'https://www.googleapis.com/auth/youtube.readonly',
    ],
    defaultConsent: { externalAccountId: 'UCsandbox000000000000001', displayName: 'Sandbox YouTube Channel' },
    tokenPrefixes: { access: 'ya29.', refresh: '1//', code: '4/0A' },
  },
  sandbox: {
    client: { clientId: 'sandbox-google-client', clientSecret: 'sandbox-google-secret' },
    sampleAccessExpiresInMs: -1000,
  },
};
