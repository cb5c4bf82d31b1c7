import { describe, expect, it } from 'vitest';
import {
  generateKeyEntry,
  KeyringError,
  parseKeyring,
  TokenCipher,
  TokenDecryptionError,
} from './tokenCipher.js';

const binding = { accountId: 'acc-1', field: 'access_token' as const };

describe('TokenCipher', () => {
  const cipher = new TokenCipher(parseKeyring(generateKeyEntry('k1')));

  it('round-trips a token and never stores it in plaintext', () => {
    const sealed = cipher.encrypt('secret-token-value', binding);
    expect(sealed).not.toContain('secret-token-value');
    expect(sealed.startsWith('v1.k1.')).toBe(true);
    expect(cipher.decrypt(sealed, binding)).toBe('secret-token-value');
  });

  it('gives a different ciphertext each time (random IV)', () => {
    expect(cipher.encrypt('same', binding)).not.toBe(cipher.encrypt('same', binding));
  });

  it('refuses a ciphertext copied into another account row', () => {
    const sealed = cipher.encrypt('secret', binding);
    expect(() => cipher.decrypt(sealed, { accountId: 'acc-2', field: 'access_token' })).toThrow(
      TokenDecryptionError,
    );
  });

  it('refuses a ciphertext moved from the access-token column to the refresh-token column', () => {
    const sealed = cipher.encrypt('secret', binding);
    expect(() => cipher.decrypt(sealed, { accountId: 'acc-1', field: 'refresh_token' })).toThrow(
      TokenDecryptionError,
    );
  });

  it('refuses a tampered ciphertext', () => {
    const sealed = cipher.encrypt('secret', binding);
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), binding)).toThrow(TokenDecryptionError);
  });

  it('refuses a ciphertext whose tag was cut to 4 bytes (GCM would otherwise accept a short tag)', () => {
    const sealed = cipher.encrypt('secret', binding);
    const parts = sealed.split('.');
    parts[4] = Buffer.from(parts[4]!, 'base64url').subarray(0, 4).toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), binding)).toThrow(TokenDecryptionError);
  });

  it('refuses a ciphertext whose tag was cut to 12 bytes', () => {
    const sealed = cipher.encrypt('secret', binding);
    const parts = sealed.split('.');
    parts[4] = Buffer.from(parts[4]!, 'base64url').subarray(0, 12).toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), binding)).toThrow(TokenDecryptionError);
  });

  it('decrypts with an older key after rotation, and encrypts only with the first key', () => {
    const oldEntry = generateKeyEntry('old');
    const before = new TokenCipher(parseKeyring(oldEntry));
    const sealedWithOld = before.encrypt('secret', binding);
    const after = new TokenCipher(parseKeyring(`${generateKeyEntry('new')},${oldEntry}`));
    expect(after.decrypt(sealedWithOld, binding)).toBe('secret');
    expect(TokenCipher.keyIdOf(after.encrypt('secret', binding))).toBe('new');
  });

  it('says which key is missing without revealing anything else', () => {
    const other = new TokenCipher(parseKeyring(generateKeyEntry('other')));
    const sealed = other.encrypt('secret', binding);
    expect(() => cipher.decrypt(sealed, binding)).toThrow(/key "other" is not in the keyring/);
  });
});

describe('parseKeyring', () => {
  it('reads several comma-separated keyId:base64 entries in order', () => {
    const keys = parseKeyring(`${generateKeyEntry('a')}, ${generateKeyEntry('b')}`);
    expect(keys.map((k) => k.id)).toEqual(['a', 'b']);
  });

  it.each([
    ['', /empty/],
    ['nokey', /keyId:base64key/],
    ['k1:dG9vLXNob3J0', /32 bytes/],
  ])('rejects %j with a clear message', (value, message) => {
    expect(() => parseKeyring(value)).toThrow(message);
    expect(() => parseKeyring(value)).toThrow(KeyringError);
  });

  it('rejects duplicate key ids', () => {
    const entry = generateKeyEntry('dup');
    expect(() => new TokenCipher(parseKeyring(`${entry},${entry}`))).toThrow(/appears twice/);
  });
});
