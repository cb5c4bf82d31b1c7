import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../domain/errors.js';
import { GENERATED_KEY_FILE, loadKeyring } from './keyring.js';
import { generateKeyEntry } from './tokenCipher.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'keyring-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('loadKeyring', () => {
  it('on the embedded default with no key set, generates one into the data folder with mode 0600', () => {
    const dataDir = tempDir();
    const first = loadKeyring({ keys: undefined, dataDir, production: false, mayGenerate: true });
    expect(first.generated).toBe(true);
    expect(first.keyFile).toBe(join(dataDir, GENERATED_KEY_FILE));
    expect(statSync(first.keyFile!).mode & 0o777).toBe(0o600);
    // The next start reuses it: tokens written before stay readable.
    const second = loadKeyring({ keys: undefined, dataDir, production: false, mayGenerate: true });
    expect(second.generated).toBe(false);
    const sealed = first.cipher.encrypt('t', { accountId: 'a', field: 'access_token' });
    expect(second.cipher.decrypt(sealed, { accountId: 'a', field: 'access_token' })).toBe('t');
  });

  it('refuses to start in production without TOKEN_ENCRYPTION_KEYS', () => {
    expect(() =>
      loadKeyring({ keys: undefined, dataDir: tempDir(), production: true, mayGenerate: true }),
    ).toThrow(ConfigurationError);
  });

  it('refuses to generate a key for a shared PostgreSQL database', () => {
    expect(() =>
      loadKeyring({ keys: '', dataDir: tempDir(), production: false, mayGenerate: false }),
    ).toThrow(/every process must share one key/);
  });

  it('prefers TOKEN_ENCRYPTION_KEYS and writes nothing', () => {
    const dataDir = tempDir();
    const loaded = loadKeyring({
      keys: generateKeyEntry('env1'),
      dataDir,
      production: true,
      mayGenerate: true,
    });
    expect(loaded.cipher.primaryKeyId).toBe('env1');
    expect(() => readFileSync(join(dataDir, GENERATED_KEY_FILE))).toThrow();
  });
});
