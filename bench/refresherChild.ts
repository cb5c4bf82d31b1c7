/**
 * A worker process for the sweep and scale-out benchmarks: opens its own SocialOAuth from the
 * environment, says "ready", waits for "go" on stdin, runs one refresher pass and prints what it
 * did, how long it took and its peak resident memory as one JSON line.
 */
import { loadConfig } from '../src/config.js';
import { SocialOAuth } from '../src/service/socialOAuth.js';

const app = await SocialOAuth.open({ config: loadConfig(process.env), migrate: false });
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
const started = performance.now();
const summary = await app.createRefresher().runPass();
const ms = performance.now() - started;
await app.close();
process.stdout.write(
  `${JSON.stringify({ ms, refreshed: summary.outcomes.refreshed, claimed: summary.claimed, failed: summary.outcomes.failed, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`,
);
