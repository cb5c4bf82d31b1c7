/**
 * A child process of the concurrency test: opens its own SocialOAuth on the shared database and
 * runs CALLERS concurrent callers, each asking for a valid token for every account in its own
 * random order. Prints one JSON line with what it saw.
 */
import { loadConfig } from '../../src/config.js';
import { SocialOAuth } from '../../src/service/socialOAuth.js';

const accountIds: string[] = JSON.parse(process.env.ACCOUNT_IDS ?? '[]');
const callers = Number(process.env.CALLERS ?? '25');

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

const app = await SocialOAuth.open({ config: loadConfig(process.env), migrate: false });
// Callers in one process share a refresh (and its result): count accounts, not results.
const refreshedHere = new Set<string>();
let failures = 0;
const failureReasons: Record<string, number> = {};
const tokens: Record<string, string> = {};
/** Refreshes that needed more than one call: a retry after a timeout can resend a spent token. */
const retried: Record<string, number> = {};
// Start together: the parent releases every child at the same moment.
await new Promise((resolve) => process.stdin.once('data', resolve));
await Promise.all(
  Array.from({ length: callers }, async () => {
    for (const id of shuffled(accountIds)) {
      const { account, result } = await app.tokens.ensureValidAccessToken(id);
      if (result && !result.success) {
        failures++;
        failureReasons[result.reason ?? 'unknown'] = (failureReasons[result.reason ?? 'unknown'] ?? 0) + 1;
      }
      if (result?.success && result.attempts > 0) refreshedHere.add(id);
      if (result && result.attempts > 1) retried[id] = result.attempts;
      tokens[id] = account.accessToken ?? '';
    }
  }),
);
await app.close();
process.stdout.write(
  `${JSON.stringify({ refreshedHere: refreshedHere.size, failures, failureReasons, tokens, retried, pid: process.pid })}\n`,
);
