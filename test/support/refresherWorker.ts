/**
 * A child process of the multi-worker test: one `social-oauth worker` pass on the shared database,
 * started when the parent says go. Prints its pass summary and pid as one JSON line.
 */
import { loadConfig } from '../../src/config.js';
import { SocialOAuth } from '../../src/service/socialOAuth.js';

const app = await SocialOAuth.open({ config: loadConfig(process.env), migrate: false });
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
const summary = await app.createRefresher().runPass();
await app.close();
process.stdout.write(`${JSON.stringify({ pid: process.pid, ...summary })}\n`);
