/**
 * A child process of the import test: an `accounts import` of IMPORT_FILE in a process of its own.
 * Opens its SocialOAuth, says "ready", waits for the parent's go (so that two of them import at
 * the same moment), imports, and prints one JSON line: the outcome, or the message of what it threw.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import { SocialOAuth } from '../../src/service/socialOAuth.js';

const app = await SocialOAuth.open({ config: loadConfig(process.env), migrate: false });
const text = readFileSync(process.env.IMPORT_FILE!, 'utf8');
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let report: unknown;
try {
  report = await app.accounts.import(text);
} catch (error) {
  report = { thrown: error instanceof Error ? error.message : String(error) };
}
await app.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
