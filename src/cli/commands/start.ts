import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { type AppConfig, loadConfig } from '../../config.js';
import type { SocialAccount } from '../../domain/account.js';
import type { NewOAuthEvent } from '../../domain/ledger.js';
import { startHttpService } from '../../http/server.js';
import { platform, platforms } from '../../platforms/registry.js';
import { createLogger } from '../../service/logging.js';
import { SocialOAuth } from '../../service/socialOAuth.js';
import { startProviderSimulator } from '../../simulator/simulator.js';
import { CliError, EXIT } from '../context.js';
import { waitForSignal } from './sandbox.js';

const SAMPLE_OWNER = 'sample-owner';

type Simulator = Awaited<ReturnType<typeof startProviderSimulator>>;

/**
 * The README's start command: migrate, run the HTTP service on the embedded default, hand out a
 * first API key, and keep tokens valid. Without platform credentials it runs the provider simulator
 * beside the service (SANDBOX MODE) so a newcomer can click through connect, refresh and revoke.
 */
export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'the quick start: migrate, run the HTTP service on HOST:PORT, print a first API key; ' +
        'without platform credentials, a sandbox with the provider simulator',
    )
    .option(
      '--interval <seconds>',
      'seconds between looks for accounts due for a keep-alive refresh (default REFRESHER_INTERVAL_SECONDS)',
    )
    .action(async (options: { interval?: string }) => {
      const config = loadConfig();
      if (options.interval !== undefined) {
        const seconds = Number(options.interval);
        if (!Number.isInteger(seconds) || seconds < 1) {
          throw new CliError(
            `--interval must be a whole number of seconds >= 1, got "${options.interval}".`,
            EXIT.usage,
          );
        }
        config.refresher.intervalMs = seconds * 1000;
      }
      const logger = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel });
      const sandbox = Object.keys(config.providers).length === 0;
      // Short lifetimes so that refreshes happen while you watch.
      const simulator = sandbox
        ? await startProviderSimulator({
            port: 0,
            clients: Object.fromEntries(platforms().map(({ name, sandbox }) => [name, sandbox.client])),
            lifetimes: { tiktokAccessSeconds: 120, googleAccessSeconds: 90 },
          })
        : null;
      if (simulator) {
        useSimulator(config, simulator);
        // The real platforms' pacing of status reads (Instagram: once a minute) would keep the
        // sample video waiting for minutes; the simulator finishes in a few looks.
        config.publishing.platforms.instagramStatusIntervalMs = 1_000;
        config.publishing.platforms.tiktokStatusIntervalMs = 1_000;
      }

      const oauth = await SocialOAuth.open({ config, logger });
      let service: Awaited<ReturnType<typeof startHttpService>> | null = null;
      const stopRefresher = new AbortController();
      let refresher: Promise<void> | null = null;
      try {
        if (oauth.generatedKeyFile) {
          console.log(
            `Generated a token encryption key at ${oauth.generatedKeyFile} (mode 0600). Back it up.`,
          );
        }
        console.log(`Database: ${oauth.health.databaseDescription}`);
        if (simulator) await prepareSandboxAccounts(oauth, simulator);

        // The service users run: the HTTP API, which also delivers the notification outbox when
        // WEBHOOK_URL is set, and the background refresher over every account, as `serve` runs them.
        service = await startHttpService({ oauth, logger });
        const firstKey = await createFirstApiKey(service.app, config);
        printWelcome(config, service.url, firstKey, sandbox);
        if (sandbox) {
          const portal = await service.app.socialOAuth.portal.create(SAMPLE_OWNER);
          console.log(
            `Status page for "${SAMPLE_OWNER}" (valid ${Math.round(config.http.portalSessionTtlSeconds / 60)} min):`,
          );
          console.log(`  ${config.http.publicBaseUrl}/portal/s/${portal.token}`);
          console.log('');
        }
        oauth.tokens.onEvent((event, account) => printTokenEvent(oauth, event, account));
        if (config.refresher.enabled) refresher = oauth.createRefresher().run(stopRefresher.signal);

        if (sandbox) await printPublishingHints(oauth, config, firstKey);
        // Issue 13: publications are worked here too (in the sandbox, to the simulated platforms).
        const publications = config.publishing.workerEnabled
          ? oauth.createPublicationWorker().run(stopRefresher.signal)
          : null;

        await waitForSignal();
        console.log('Shutting down…');
        stopRefresher.abort();
        await publications;
      } finally {
        stopRefresher.abort();
        await service?.stop();
        await refresher;
        await oauth.close();
        await simulator?.close();
      }
    });
}

function useSimulator(config: AppConfig, simulator: Simulator): void {
  // Client credentials the sandbox simulator accepts (each platform's folder); they exist only here.
  for (const { name, sandbox } of platforms()) {
    config.providers[name] = {
      ...sandbox.client,
      redirectUri: `${config.http.publicBaseUrl}/oauth/${name}/callback`,
      baseUrl: simulator.baseUrlFor(name),
    };
  }
  config.refresh.thresholdSeconds = 30;
  const bar = '='.repeat(76);
  console.log(bar);
  console.log(' SANDBOX MODE: no platform credentials are configured.');
  console.log(
    ` ${platforms()
      .map((p) => p.label)
      .join(', ')} are SIMULATED at ${simulator.url}.`,
  );
  console.log(' Nothing here talks to the real platforms. Set <PLATFORM>_CLIENT_ID/_SECRET to leave.');
  console.log(bar);
}

/** On the embedded default, the first start creates an API key and shows it once. */
async function createFirstApiKey(
  app: Awaited<ReturnType<typeof startHttpService>>['app'],
  config: AppConfig,
): Promise<string | null> {
  if (config.databaseUrl !== null) return null;
  const keys = app.socialOAuth.apiKeys;
  if ((await keys.count()) > 0) return null;
  return (await keys.create('first key (created by start)')).key;
}

function printWelcome(config: AppConfig, url: string, firstKey: string | null, sandbox: boolean): void {
  console.log('');
  console.log(`social-oauth is listening on ${url} (public URL ${config.http.publicBaseUrl})`);
  if (firstKey) {
    console.log('');
    console.log('Your first API key (shown only this once; store it now):');
    console.log(`  ${firstKey}`);
    console.log('More keys: social-oauth api-keys create --name <what for>');
  }
  console.log('');
  const key = firstKey ?? '<api key>';
  console.log('Try it:');
  console.log(`  curl -s ${config.http.publicBaseUrl}/health`);
  console.log(`  curl -s -H "Authorization: Bearer ${key}" ${config.http.publicBaseUrl}/v1/accounts`);
  console.log(
    `  curl -s -H "Authorization: Bearer ${key}" -H "content-type: application/json" ` +
      `-d '{"provider":"tiktok","owner_id":"${SAMPLE_OWNER}"}' ${config.http.publicBaseUrl}/v1/connect-sessions`,
  );
  if (sandbox)
    console.log('  (the simulator consents at once; add sim_deny=1 to the authorize URL to refuse)');
  console.log('');
}

/**
 * The simulator forgets everything when it stops. Sample accounts are imported on the first run;
 * on later runs the stored tokens are registered with the fresh simulator so they stay valid.
 */
async function prepareSandboxAccounts(app: SocialOAuth, simulator: Simulator): Promise<void> {
  const existing = await app.accounts.list({ limit: 1000 });
  if (existing.length === 0) {
    const now = app.clock.now();
    const lines = platforms().map(({ name: provider, sandbox }) => {
      // Mostly already expired, so the first API call for a token refreshes it through the
      // simulator; a platform that cannot refresh an expired token says otherwise in its folder.
      const seeded = simulator.seedAccount(provider, {
        externalAccountId: sandbox.sampleExternalAccountId ?? `sample-${provider}`,
        accessExpiresAt: now + sandbox.sampleAccessExpiresInMs,
        issuedAt: now - 59 * 24 * 3600_000,
      });
      return JSON.stringify({
        owner_id: SAMPLE_OWNER,
        provider,
        external_account_id: seeded.externalAccountId,
        display_name: seeded.displayName,
        access_token: seeded.accessToken,
        refresh_token: seeded.refreshToken,
        expires_at: seeded.accessExpiresAt,
        token_issued_at: seeded.issuedAt,
        scopes: seeded.scopes,
      });
    });
    const outcome = await app.accounts.import(lines.join('\n'));
    console.log(`Imported ${outcome.imported} sample accounts (owner "${SAMPLE_OWNER}").`);
    return;
  }
  for (const summary of existing) {
    const account = await app.accounts.findById(summary.id);
    if (account?.status !== 'active' || !account.accessToken) continue;
    simulator.seedAccount(account.provider, {
      externalAccountId: account.externalAccountId,
      displayName: account.displayName ?? undefined,
      accessToken: account.accessToken,
      refreshToken: account.refreshToken ?? undefined,
      accessExpiresAt: account.expiresAt ?? undefined,
      refreshExpiresAt: account.refreshTokenExpiresAt ?? undefined,
      issuedAt: account.tokenIssuedAt ?? undefined,
    });
  }
}

/** Prints what the refresher (or an API call) did to a token, so the service's output stays readable. */
function printTokenEvent(app: SocialOAuth, event: NewOAuthEvent, account: SocialAccount): void {
  if (event.type !== 'refreshed' && event.type !== 'refresh_failed' && event.type !== 'needs_reauth') return;
  const left =
    account.expiresAt === null
      ? 'no expiry'
      : `${Math.round((account.expiresAt - app.clock.now()) / 1000)}s left`;
  const what = event.type === 'refreshed' ? 'REFRESHED' : `refresh failed: ${event.reason ?? event.type}`;
  console.log(
    `${new Date(app.clock.now()).toISOString()}  ${account.provider.padEnd(9)} ${(account.displayName ?? account.externalAccountId).padEnd(24)} ${account.status.padEnd(12)} ${what} (${left})`,
  );
}

/**
 * Issue 13: a small sample video in DATA_DIR and, for each sample account whose platform this build
 * can publish to, the command that posts it (to the simulated platform).
 */
async function printPublishingHints(
  app: SocialOAuth,
  config: AppConfig,
  firstKey: string | null,
): Promise<void> {
  const publishing = new Set(app.publishingProviders());
  const accounts = (await app.accounts.list({ ownerId: SAMPLE_OWNER, limit: 100 })).filter((account) =>
    publishing.has(account.provider),
  );
  if (accounts.length === 0) return;
  const sample = join(config.dataDir, 'sample-video.mp4');
  if (!existsSync(sample)) writeFileSync(sample, sampleVideoBytes());
  const key = firstKey ?? '<api key>';
  console.log('Publish the sample video (the simulated platforms count every post):');
  for (const account of accounts) {
    console.log(
      `  curl -s -H "Authorization: Bearer ${key}" -F file=@${sample} ` +
        `-F 'metadata={"title":"Hello from the sandbox"};type=application/json' ` +
        `${config.http.publicBaseUrl}/v1/accounts/${account.id}/publications   # ${account.provider}`,
    );
  }
  // Another process knows the simulator only through the platform's settings: say them (the
  // sandbox credentials are the simulator's own, published in the platform's folder, not secrets).
  // Not a platform that fetches from a URL: `publish` would have to serve the file itself, on the
  // port this service holds.
  const first = accounts.find((account) => !app.publishesFromUrl(account.provider)) ?? accounts[0]!;
  const settings = config.providers[first.provider];
  const { env } = platform(first.provider);
  const cliEnv = settings
    ? `${env.clientId}=${settings.clientId} ${env.clientSecret}=${settings.clientSecret} ${env.baseUrl}=${settings.baseUrl} `
    : '';
  console.log(
    `  or, from another shell: ${cliEnv}DATA_DIR=${config.dataDir} node dist/cli/main.js publish ${first.id} ${sample} --wait`,
  );
  console.log('');
}

/**
 * Bytes that start like an MP4 (an ISO BMFF `ftyp` box), then filler: enough for the simulated
 * platforms, which count and hash bytes and do not decode video.
 */
function sampleVideoBytes(): Buffer {
  const ftyp = Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex');
  const filler = Buffer.alloc(1_500_000);
  for (let i = 0; i < filler.length; i++) filler[i] = (i * 31 + 7) % 251;
  return Buffer.concat([ftyp, filler]);
}
