import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { generateKeyEntry } from '../../src/crypto/tokenCipher.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { ProviderName } from '../../src/domain/providerName.js';
import { PROVIDER_NAMES } from '../../src/platforms/registry.js';
import { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { seededRandom } from '../../src/simulator/faults.js';
import { startProviderSimulator } from '../../src/simulator/simulator.js';
import { DEFAULT_LIFETIMES } from '../../src/simulator/state.js';

/**
 * "A year in a minute": accounts on the three platforms, connected at random times in the first
 * two months and mostly left alone, a background refresher passing every few simulated hours, and
 * one clock for us and the simulator moved forward by hand. At the end: how many accounts were lost
 * to expiry (the target is none) and what keeping them alive cost, against the least it can cost.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;

/** How often an account's owner asks for a token. Most never do: that is where peers lose accounts. */
export type UsageProfile = 'never' | 'quarterly' | 'monthly';
const PROFILE_SHARES: Array<[UsageProfile, number]> = [
  ['never', 0.6],
  ['quarterly', 0.3],
  ['monthly', 0.1],
];
const PROFILE_INTERVAL: Record<UsageProfile, number | null> = {
  never: null,
  quarterly: 91 * DAY,
  monthly: 30 * DAY,
};

export interface YearSimulationOptions {
  accounts: number;
  days?: number;
  /** Simulated time between refresher passes. */
  stepHours?: number;
  seed?: number;
  /** postgres://… or undefined for a SQLite file in a temporary folder. */
  databaseUrl?: string;
  onProgress?: (day: number) => void;
}

export interface PlatformYear {
  provider: ProviderName;
  accounts: number;
  lost: number;
  /** All refresh calls (on demand and keep-alive) per account-year. */
  callsPerAccountYear: number;
  /** Accounts never used: keep-alive refresh calls per account-year … */
  idleCallsPerAccountYear: number;
  /** … and the least that keeps them alive (one call per credential lifetime). */
  idleLeastPerAccountYear: number;
}

export interface YearSimulationReport {
  accounts: number;
  days: number;
  lost: number;
  platforms: PlatformYear[];
  passes: number;
  wallMs: number;
}

/** The credential lifetime that sets the pace of keep-alive refreshes on each platform (simulator defaults). */
const KEEP_ALIVE_LIFETIME_MS: Record<ProviderName, number> = {
  instagram: DEFAULT_LIFETIMES.instagramLongSeconds * 1000,
  tiktok: DEFAULT_LIFETIMES.tiktokRefreshSeconds * 1000,
  youtube: DEFAULT_LIFETIMES.googleRefreshIdleSeconds * 1000,
};

interface SimAccount {
  id: string | null;
  provider: ProviderName;
  externalAccountId: string;
  connectAt: number;
  profile: UsageProfile;
  nextUseAt: number | null;
}

export async function simulateYear(options: YearSimulationOptions): Promise<YearSimulationReport> {
  const started = performance.now();
  const days = options.days ?? 365;
  const step = (options.stepHours ?? 6) * HOUR;
  const random = seededRandom(options.seed ?? 2026);
  const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
  const start = clock.now();
  const end = start + days * DAY;
  const clients = Object.fromEntries(
    PROVIDER_NAMES.map((p) => [p, { clientId: `year-${p}`, clientSecret: `year-${p}-secret` }]),
  ) as Record<ProviderName, { clientId: string; clientSecret: string }>;
  const simulator = await startProviderSimulator({ port: 0, clock, clients });
  // Memory-backed where there is one: the simulation counts calls and losses, not disk syncs.
  const dataDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'social-oauth-year-'));
  const env: NodeJS.ProcessEnv = {
    DATA_DIR: dataDir,
    DATABASE_URL: options.databaseUrl,
    TOKEN_ENCRYPTION_KEYS: generateKeyEntry('year'),
    WORKER_CONCURRENCY: '16',
    REFRESHER_BATCH_SIZE: '200',
  };
  const ENV_NAMES: Record<ProviderName, [string, string]> = {
    instagram: ['INSTAGRAM_CLIENT_ID', 'INSTAGRAM'],
    tiktok: ['TIKTOK_CLIENT_KEY', 'TIKTOK'],
    youtube: ['YOUTUBE_CLIENT_ID', 'YOUTUBE'],
  };
  for (const provider of PROVIDER_NAMES) {
    const [idVar, prefix] = ENV_NAMES[provider]!;
    env[idVar] = clients[provider]!.clientId;
    env[`${prefix}_CLIENT_SECRET`] = clients[provider]!.clientSecret;
    env[`${prefix}_BASE_URL`] = simulator.baseUrlFor(provider);
    // The simulated year passes in a minute of real time: a real-time rate limit would stretch it.
    env[`${prefix}_RATE_LIMIT_RPS`] = '0';
  }
  const app = await SocialOAuth.open({
    config: loadConfig(env),
    clock,
    // A year passes on this clock: on PostgreSQL it stands in for the server's in due times too.
    scheduleClock: clock,
    random,
    sleep: async (ms) => clock.advance(ms),
  });
  try {
    const accounts: SimAccount[] = Array.from({ length: options.accounts }, (_, i) => {
      const provider = PROVIDER_NAMES[i % PROVIDER_NAMES.length]!;
      const draw = random();
      let cumulative = 0;
      const profile =
        PROFILE_SHARES.find(([, share]) => {
          cumulative += share;
          return cumulative > draw;
        })?.[0] ?? 'never';
      const connectAt = start + Math.floor(random() * 60 * DAY);
      const interval = PROFILE_INTERVAL[profile];
      return {
        id: null,
        provider,
        externalAccountId: `${provider}-year-${i}`,
        connectAt,
        profile,
        nextUseAt: interval === null ? null : connectAt + Math.floor(random() * interval),
      };
    });
    const pending = [...accounts].sort((a, b) => a.connectAt - b.connectAt);
    const refresher = app.createRefresher();
    let passes = 0;
    const keepAliveCalls = new Map<string, number>();
    for (let now = start; now <= end; now += step) {
      clock.set(now);
      // Connections since the last step (a burst at the same minute is what jitter spreads).
      while (pending.length > 0 && pending[0]!.connectAt <= now) {
        const account = pending.shift()!;
        const seeded = simulator.seedAccount(account.provider, {
          externalAccountId: account.externalAccountId,
          issuedAt: now,
        });
        const stored = await storeOf(app).accounts.insert(
          {
            ownerId: 'year',
            provider: account.provider,
            externalAccountId: account.externalAccountId,
            displayName: null,
            accessToken: seeded.accessToken,
            refreshToken: seeded.refreshToken,
            expiresAt: seeded.accessExpiresAt,
            refreshTokenExpiresAt: seeded.refreshExpiresAt,
            scopes: seeded.scopes,
            tokenIssuedAt: now,
          },
          now,
        );
        account.id = stored.id;
      }
      // Owners who post now ask for a token (and refresh it on demand if it expired).
      const users = accounts.filter((a) => a.id !== null && a.nextUseAt !== null && a.nextUseAt <= now);
      await inBatches(users, 16, async (account) => {
        await app.tokens.ensureValidAccessToken(account.id!);
        account.nextUseAt = now + PROFILE_INTERVAL[account.profile]!;
      });
      await refresher.runPass({
        onAccount(outcome, claim) {
          if (outcome === 'refreshed') keepAliveCalls.set(claim.id, (keepAliveCalls.get(claim.id) ?? 0) + 1);
        },
      });
      passes++;
      options.onProgress?.((now - start) / DAY);
    }

    const platforms: PlatformYear[] = [];
    let lostTotal = 0;
    for (const provider of PROVIDER_NAMES) {
      const mine = accounts.filter((a) => a.provider === provider && a.id !== null);
      let lost = 0;
      let calls = 0;
      let years = 0;
      let idleCalls = 0;
      let idleYears = 0;
      let idleLeast = 0;
      for (const account of mine) {
        const stored = (await storeOf(app).accounts.findById(account.id!))!;
        const alive =
          stored.status === 'active' &&
          (provider === 'instagram'
            ? simulator.isAccessTokenValid(provider, stored.accessToken!)
            : stored.refreshToken !== null && simulator.isRefreshTokenValid(provider, stored.refreshToken));
        if (!alive) lost++;
        const lived = end - account.connectAt;
        calls += simulator.refreshCalls(provider, account.externalAccountId);
        years += lived / YEAR;
        if (account.profile === 'never') {
          idleCalls += keepAliveCalls.get(account.id!) ?? 0;
          idleYears += lived / YEAR;
          // Each refresh buys one lifetime: surviving `lived` takes ceil(lived / lifetime) - 1.
          idleLeast += Math.max(0, Math.ceil(lived / KEEP_ALIVE_LIFETIME_MS[provider]!) - 1);
        }
      }
      lostTotal += lost;
      platforms.push({
        provider,
        accounts: mine.length,
        lost,
        callsPerAccountYear: years === 0 ? 0 : calls / years,
        idleCallsPerAccountYear: idleYears === 0 ? 0 : idleCalls / idleYears,
        idleLeastPerAccountYear: idleYears === 0 ? 0 : idleLeast / idleYears,
      });
    }
    return {
      accounts: options.accounts,
      days,
      lost: lostTotal,
      platforms,
      passes,
      wallMs: performance.now() - started,
    };
  } finally {
    await app.close();
    await simulator.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function inBatches<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let index = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (index < items.length) await work(items[index++]!);
    }),
  );
}
