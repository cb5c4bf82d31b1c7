import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { generateKeyEntry } from '../../crypto/tokenCipher.js';
import { withApp } from '../context.js';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('token encryption keys');

  keys
    .command('generate')
    .description('print a new key entry for TOKEN_ENCRYPTION_KEYS ("keyId:base64")')
    .option('--id <keyId>', 'key id (letters, digits, _ and -)')
    .action((options: { id?: string }) => {
      console.log(generateKeyEntry(options.id));
    });

  keys
    .command('status')
    .description(
      "count stored tokens and publications' sealed values per encryption key id (an old key can go once it counts 0)",
    )
    .option('--json', 'print {keyId: count}')
    .action((options: { json?: boolean }) =>
      withApp(async (app) => {
        const counts = await app.keys.countTokensByKey();
        if (options.json) {
          console.log(JSON.stringify(Object.fromEntries(counts)));
          return;
        }
        const keyring = new Set(app.keys.keyIds);
        for (const id of new Set([...app.keys.keyIds, ...counts.keys()])) {
          const where =
            id === app.keys.primaryKeyId
              ? 'first (encrypts)'
              : keyring.has(id)
                ? 'in keyring'
                : 'NOT IN KEYRING';
          console.log(`${id.padEnd(20)} ${String(counts.get(id) ?? 0).padStart(8)} value(s)  ${where}`);
        }
      }),
    );

  keys
    .command('rotate')
    .description(
      "re-encrypt every stored token and publications' sealed values under the first key of TOKEN_ENCRYPTION_KEYS",
    )
    .option('--batch-size <n>', 'rows per batch', '500')
    .action((options: { batchSize: string }) =>
      withApp(async (app) => {
        const batchSize = Number(options.batchSize);
        if (!Number.isInteger(batchSize) || batchSize < 1)
          throw new Error('--batch-size must be a whole number >= 1');
        const bar = new cliProgress.SingleBar(
          { format: 'rotating [{bar}] {value}/{total} rows', stream: process.stderr, noTTYOutput: false },
          cliProgress.Presets.shades_classic,
        );
        let started = false;
        const outcome = await app.keys.rotate({
          batchSize,
          onProgress: ({ scanned, total }) => {
            if (!started) {
              bar.start(total, 0);
              started = true;
            }
            bar.update(Math.min(scanned, Math.max(total, scanned)));
          },
        });
        if (started) bar.stop();
        if (outcome.undecryptable.length > 0) {
          process.stderr.write(
            `warning: ${outcome.undecryptable.length} account(s) have a token no key of TOKEN_ENCRYPTION_KEYS decrypts; ` +
              `left as they were: ${outcome.undecryptable.join(', ')}\n`,
          );
        }
        const published = outcome.publications;
        if (published.undecryptable.length > 0) {
          process.stderr.write(
            `warning: ${published.undecryptable.length} publication(s) hold a value no key of TOKEN_ENCRYPTION_KEYS decrypts; ` +
              `left as they were: ${published.undecryptable.join(', ')}\n`,
          );
        }
        console.log(
          `scanned ${outcome.scanned} account(s); re-encrypted ${outcome.reencrypted} token(s) under key "${app.keys.primaryKeyId}"` +
            (outcome.changedConcurrently
              ? `; ${outcome.changedConcurrently} changed by a refresh meanwhile (already current)`
              : '') +
            `; scanned ${published.scanned} publication(s); re-encrypted ${published.reencrypted} publication value(s)` +
            (published.changedConcurrently
              ? `; ${published.changedConcurrently} changed by a publication worker meanwhile (already current)`
              : ''),
        );
      }),
    );
}
