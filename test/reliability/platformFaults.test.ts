import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialAccount } from '../../src/domain/account.js';
import { PROVIDER_NAMES } from '../../src/platforms/registry.js';
import type { SocialOAuth } from '../../src/service/socialOAuth.js';
import { storeOf } from '../../src/service/storeAccess.js';
import { seededRandom } from '../../src/simulator/faults.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { insertSeededAccount } from '../support/accounts.js';
import { openTestApp } from '../support/app.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { simulatorEnv, startTestSimulator } from '../support/simulator.js';

/**
 * Platform faults: every platform answers 20% of calls with a 5xx, lets 5% hang past our timeout,
 * and opens with a burst of 429s carrying Retry-After. Afterwards every account must be active
 * with a token the platform accepts, no call for an account may have come before a Retry-After it
 * was given had passed, and no refresh may have made more calls than the retry bound.
 */
const ACCOUNTS_PER_PROVIDER = 30;
const MAX_ATTEMPTS = 4;
const RETRY_AFTER_SECONDS = 1;
const DAY = 86_400_000;

for (const factory of DATABASES) {
  describe(`platform faults on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator({ latencyMs: 5 });
      app = await openTestApp(database, {
        env: {
          ...simulatorEnv(simulator),
          PROVIDER_TIMEOUT_MS: '1500',
          REFRESH_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
          REFRESH_BACKOFF_BASE_MS: '20',
          REFRESH_BACKOFF_MAX_MS: '200',
        },
      });
    });
    afterAll(async () => {
      await app?.close();
      await simulator?.close();
      await database?.drop();
    });

    it('ends with every account active and valid, Retry-After honoured, retries within bound', async () => {
      const now = Date.now();
      const accounts: SocialAccount[] = [];
      for (const provider of PROVIDER_NAMES) {
        for (let i = 0; i < ACCOUNTS_PER_PROVIDER; i++) {
          accounts.push(
            await insertSeededAccount(
              storeOf(app).accounts,
              simulator,
              provider,
              {
                externalAccountId: `${provider}-fault-${i}`,
                accessExpiresAt: now + 60_000, // inside the 5-minute threshold: due, still usable
                issuedAt: now - 30 * DAY,
              },
              { ownerId: 'owner-faults', now },
            ),
          );
        }
      }
      const random = seededRandom(20261124);
      for (const provider of PROVIDER_NAMES) {
        simulator.faults.set(provider, {
          errorRate: 0.2,
          status: 503,
          hangRate: 0.05,
          hangMs: 4000,
          rateLimitNext: 10,
          retryAfterSeconds: RETRY_AFTER_SECONDS,
          random,
          routes: ['refresh'],
        });
      }

      // Callers keep asking, as a publishing engine would; a pass re-asks for what is still due.
      let attemptsOverBound = 0;
      for (let pass = 0; pass < 6; pass++) {
        const due = [];
        for (const account of accounts) {
          const current = (await storeOf(app).accounts.findById(account.id))!;
          if (current.tokenIssuedAt! < now) due.push(current);
        }
        if (due.length === 0) break;
        let comeBackAt = 0;
        await runWithConcurrency(due, 20, async (account) => {
          const { result } = await app.tokens.ensureValidAccessToken(account.id);
          if (result && result.attempts > MAX_ATTEMPTS) attemptsOverBound++;
          if (result && !result.success) comeBackAt = Math.max(comeBackAt, result.retryAt ?? 0);
        });
        // A failed refresh puts the account in a cool-down (no new calls until then): ask again
        // after it, as a caller that respects retryAt would.
        const wait = comeBackAt - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait + 50, 15_000)));
      }

      let lost = 0;
      for (const account of accounts) {
        const current = (await storeOf(app).accounts.findById(account.id))!;
        if (
          current.status !== 'active' ||
          !simulator.isAccessTokenValid(current.provider, current.accessToken!)
        )
          lost++;
        expect(current.tokenIssuedAt).toBeGreaterThanOrEqual(now); // refreshed, not just still valid
      }
      expect(lost).toBe(0);
      expect(attemptsOverBound).toBe(0);

      // Retry-After: after a 429 for an account, its next call came at least that much later.
      const log = simulator.refreshLog();
      let rateLimited = 0;
      for (const provider of PROVIDER_NAMES) {
        const byAccount = groupBy(
          log.filter((entry) => entry.provider === provider),
          (entry) => entry.externalAccountId ?? '?',
        );
        for (const entries of byAccount.values()) {
          entries.forEach((entry, index) => {
            const next = entries[index + 1];
            if (entry.fault !== 'rateLimit') return;
            rateLimited++;
            if (next) expect(next.atMs - entry.atMs).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000);
          });
        }
      }
      expect(rateLimited).toBe(10 * PROVIDER_NAMES.length);
      const faulted = log.filter((entry) => entry.fault === 'fail' || entry.fault === 'hang').length;
      expect(faulted).toBeGreaterThan(0);
      console.log(
        `[platform faults] ${JSON.stringify({
          database: factory.kind,
          accounts: accounts.length,
          refreshCalls: log.length,
          answered5xx: log.filter((entry) => entry.fault === 'fail').length,
          hung: log.filter((entry) => entry.fault === 'hang').length,
          rateLimited,
          lost,
        })}`,
      );
    }, 120_000);
  });
}

async function runWithConcurrency<T>(
  items: T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k) ?? [];
    group.push(item);
    groups.set(k, group);
  }
  return groups;
}
