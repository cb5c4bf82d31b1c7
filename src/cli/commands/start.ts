import type { Command } from 'commander';
import { loadConfig } from '../../config.js';
import { PROVIDER_NAMES, type ProviderName } from '../../domain/providerName.js';
import { importAccounts } from '../../service/accountImport.js';
import { createLogger } from '../../service/logging.js';
import { SocialOAuth } from '../../service/socialOAuth.js';
import { startProviderSimulator } from '../../simulator/simulator.js';
import { waitForSignal } from './sandbox.js';

/** Client credentials the sandbox simulator accepts; they exist only on this machine. */
const SANDBOX_CLIENTS: Record<ProviderName, { clientId: string; clientSecret: string }> = {
  instagram: { clientId: 'sandbox-instagram-app', clientSecret: 'sandbox-instagram-secret' },
  tiktok: { clientId: 'sandbox-tiktok-key', clientSecret: 'sandbox-tiktok-secret' },
  youtube: { clientId: 'sandbox-google-client', clientSecret: 'sandbox-google-secret' },
};

export function registerStart(program: Command): void {
  program
    .command('start')
    .description(
      'the quick-start demo: migrate, import sample accounts against the simulator, keep their tokens valid',
    )
    .option('--interval <seconds>', 'seconds between checks', '10')
    .action(async (options: { interval: string }) => {
      const intervalMs = Math.max(1, Number(options.interval) || 10) * 1000;
      const config = loadConfig();
      const logger = createLogger({ level: config.logLevel });
      const sandbox = Object.keys(config.providers).length === 0;
      // Short lifetimes so that refreshes happen while you watch.
      const simulator = sandbox
        ? await startProviderSimulator({
            port: 0,
            clients: SANDBOX_CLIENTS,
            lifetimes: { tiktokAccessSeconds: 120, googleAccessSeconds: 90 },
          })
        : null;
      if (simulator) {
        for (const name of PROVIDER_NAMES) {
          config.providers[name] = {
            ...SANDBOX_CLIENTS[name],
            redirectUri: null,
            baseUrl: simulator.baseUrlFor(name),
          };
        }
        config.refresh.thresholdSeconds = 30;
        console.log('='.repeat(72));
        console.log(` SANDBOX MODE: no platform credentials configured.`);
        console.log(` Talking to the provider simulator at ${simulator.url}, not to real platforms.`);
        console.log('='.repeat(72));
      }
      const app = await SocialOAuth.open({ config, logger });
      if (app.generatedKeyFile)
        console.log(`Generated a token encryption key at ${app.generatedKeyFile} (mode 0600).`);
      console.log(`Database: ${app.database.description}`);
      try {
        if (simulator) await prepareSandboxAccounts(app, simulator);
        const stop = waitForSignal();
        let stopped = false;
        void stop.then(() => {
          stopped = true;
        });
        while (!stopped) {
          await checkAll(app);
          await Promise.race([stop, new Promise((resolve) => setTimeout(resolve, intervalMs))]);
        }
      } finally {
        await app.close();
        await simulator?.close();
      }
    });
}

type Simulator = Awaited<ReturnType<typeof startProviderSimulator>>;

/**
 * The simulator forgets everything when it stops. Sample accounts are imported on the first run;
 * on later runs the stored tokens are registered with the fresh simulator so they stay valid.
 */
async function prepareSandboxAccounts(app: SocialOAuth, simulator: Simulator): Promise<void> {
  const existing = await app.accounts.list({ limit: 1000 });
  if (existing.length === 0) {
    const now = app.clock.now();
    const lines = PROVIDER_NAMES.map((provider) => {
      // Already expired, so the first check refreshes them through the simulator.
      const seeded = simulator.seedAccount(provider, {
        externalAccountId: `sample-${provider}`,
        accessExpiresAt: now - 1000,
        issuedAt: now - 59 * 24 * 3600_000,
      });
      return JSON.stringify({
        owner_id: 'sample-owner',
        provider,
        external_account_id: seeded.externalAccountId,
        display_name: seeded.displayName,
        access_token: seeded.accessToken,
        refresh_token: seeded.refreshToken,
        // Instagram's expired token could not be refreshed: give it one more minute.
        expires_at: provider === 'instagram' ? now + 60_000 : seeded.accessExpiresAt,
        token_issued_at: seeded.issuedAt,
        scopes: seeded.scopes,
      });
    });
    const outcome = await importAccounts(app.accounts, lines.join('\n'), app.clock);
    console.log(`Imported ${outcome.imported} sample accounts (owner "sample-owner").`);
    return;
  }
  for (const summary of existing) {
    const account = await app.accounts.findById(summary.id);
    if (!account || account.status !== 'active' || !account.accessToken) continue;
    simulator.seedAccount(account.provider, {
      externalAccountId: account.externalAccountId,
      accessToken: account.accessToken,
      refreshToken: account.refreshToken ?? undefined,
      accessExpiresAt: account.expiresAt ?? undefined,
      refreshExpiresAt: account.refreshTokenExpiresAt ?? undefined,
      issuedAt: account.tokenIssuedAt ?? undefined,
    });
  }
}

async function checkAll(app: SocialOAuth): Promise<void> {
  const accounts = await app.accounts.list({ limit: 1000 });
  for (const summary of accounts) {
    if (summary.status !== 'active') continue;
    const { account, result } = await app.tokens.ensureValidAccessToken(summary.id);
    const left =
      account.expiresAt === null
        ? 'no expiry'
        : `${Math.round((account.expiresAt - app.clock.now()) / 1000)}s left`;
    const what =
      result === null ? 'valid' : result.success ? 'REFRESHED' : `refresh failed: ${result.reason}`;
    console.log(
      `${new Date(app.clock.now()).toISOString()}  ${account.provider.padEnd(9)} ${account.externalAccountId.padEnd(18)} ${account.status.padEnd(12)} ${what} (${left})`,
    );
  }
}
