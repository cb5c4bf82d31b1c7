import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigurationError } from '../domain/errors.js';
import { generateKeyEntry, parseKeyring, TokenCipher } from './tokenCipher.js';

export const GENERATED_KEY_FILE = 'token-encryption.key';

export interface KeyringSource {
  /** TOKEN_ENCRYPTION_KEYS, if set. */
  keys: string | undefined;
  /** Where the embedded default keeps its data (and a generated key). */
  dataDir: string;
  production: boolean;
  /** Only the embedded SQLite default may generate a key: a shared PostgreSQL needs one key for all. */
  mayGenerate: boolean;
}

export interface LoadedKeyring {
  cipher: TokenCipher;
  /** Set when the key came from (or was just written to) the data folder. */
  keyFile: string | null;
  generated: boolean;
}

export function loadKeyring(source: KeyringSource): LoadedKeyring {
  if (source.keys && source.keys.trim() !== '') {
    return { cipher: new TokenCipher(parseKeyring(source.keys)), keyFile: null, generated: false };
  }
  if (source.production) {
    throw new ConfigurationError(
      'TOKEN_ENCRYPTION_KEYS is not set. In production the token encryption key must come from the environment ' +
        '(generate one with `social-oauth keys generate`).',
    );
  }
  const keyFile = join(source.dataDir, GENERATED_KEY_FILE);
  if (existsSync(keyFile)) {
    return {
      cipher: new TokenCipher(parseKeyring(readFileSync(keyFile, 'utf8'))),
      keyFile,
      generated: false,
    };
  }
  if (!source.mayGenerate) {
    throw new ConfigurationError(
      'TOKEN_ENCRYPTION_KEYS is not set. With DATABASE_URL every process must share one key: set TOKEN_ENCRYPTION_KEYS ' +
        '(generate one with `social-oauth keys generate`).',
    );
  }
  mkdirSync(source.dataDir, { recursive: true });
  // wx: never overwrite a key another process wrote a moment ago.
  try {
    writeFileSync(keyFile, `${generateKeyEntry('local1')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(keyFile, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return {
      cipher: new TokenCipher(parseKeyring(readFileSync(keyFile, 'utf8'))),
      keyFile,
      generated: false,
    };
  }
  return { cipher: new TokenCipher(parseKeyring(readFileSync(keyFile, 'utf8'))), keyFile, generated: true };
}
