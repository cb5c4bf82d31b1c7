import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';

/**
 * AES-256-GCM for tokens at rest. Each ciphertext names the key that made it, and is bound to its
 * row and column through the associated data: a token copied into another account's row, or from
 * the access-token column into the refresh-token column, fails to decrypt.
 *
 * Format: `v1.<keyId>.<iv>.<ciphertext>.<tag>`, parts base64url.
 */
const FORMAT_VERSION = 'v1';
const IV_BYTES = 12;
const KEY_BYTES = 32;
/**
 * GCM's full 128-bit tag. Without `authTagLength`, Node's decipher accepts any tag of 4 to 16
 * bytes, so a ciphertext whose tag was cut to 4 bytes could be forged with about 2^32 tries
 * (NIST SP 800-38D, appendix C, on short tags). We only ever write 16-byte tags, so only those are read.
 */
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export type TokenField = 'access_token' | 'refresh_token';

/** Issue 13: a publication's capabilities (the platform's resumable state, a caller's source URL). */
export type PublicationSecretField = 'resumable_state' | 'source_url' | 'media_link';

export interface TokenBinding {
  /** The row the value belongs to: an account id, or a publication id for publication fields. */
  accountId: string;
  /** A column, `refresh_journal` (tokens kept on disk until a refused save succeeds), or a publication's secret. */
  field: TokenField | 'refresh_journal' | PublicationSecretField;
}

export class TokenDecryptionError extends Error {
  readonly code = 'token_decryption_failed' as const;
  constructor(reason: string) {
    // Never includes the ciphertext or a key: only why.
    super(`Stored token could not be decrypted: ${reason}`);
    this.name = 'TokenDecryptionError';
  }
}

export class KeyringError extends Error {
  readonly code = 'keyring_invalid' as const;
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/**
 * IVs are drawn from a buffer of CSPRNG output refilled 4 KiB at a time (as crypto.randomUUID
 * does): one system call per ~340 encryptions instead of one each. A 96-bit random IV per
 * encryption is what GCM needs; where the bytes were buffered changes nothing about them.
 */
const IV_POOL = Buffer.alloc(4096);
let ivPoolOffset = IV_POOL.length;

function nextIv(): Buffer {
  if (ivPoolOffset + IV_BYTES > IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivPoolOffset = 0;
  }
  // A copy: the pool is overwritten on the next refill.
  const iv = Buffer.from(IV_POOL.subarray(ivPoolOffset, ivPoolOffset + IV_BYTES));
  ivPoolOffset += IV_BYTES;
  return iv;
}
export class TokenCipher {
  private readonly keys: Map<string, Buffer>;
  readonly primaryKeyId: string;

  /** The first key encrypts; every key decrypts. */
  constructor(keys: readonly EncryptionKey[]) {
    const first = keys[0];
    if (!first) throw new KeyringError('The keyring needs at least one key.');
    this.keys = new Map();
    for (const { id, key } of keys) {
      if (!KEY_ID_PATTERN.test(id)) throw new KeyringError(`Key id "${id}" must match ${KEY_ID_PATTERN}.`);
      if (key.length !== KEY_BYTES) throw new KeyringError(`Key "${id}" must be ${KEY_BYTES} bytes.`);
      if (this.keys.has(id)) throw new KeyringError(`Key id "${id}" appears twice.`);
      this.keys.set(id, key);
    }
    this.primaryKeyId = first.id;
  }

  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  encrypt(plaintext: string, binding: TokenBinding): string {
    const key = this.keys.get(this.primaryKeyId)!;
    const iv = nextIv();
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(this.primaryKeyId, binding));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT_VERSION, this.primaryKeyId, b64(iv), b64(body), b64(tag)].join('.');
  }

  decrypt(ciphertext: string, binding: TokenBinding): string {
    const parts = ciphertext.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT_VERSION) throw new TokenDecryptionError('unknown format');
    const [, keyId, iv, body, tag] = parts as [string, string, string, string, string];
    const key = this.keys.get(keyId);
    if (!key) throw new TokenDecryptionError(`key "${keyId}" is not in the keyring`);
    const authTag = Buffer.from(tag, 'base64url');
    if (authTag.length !== TAG_BYTES)
      throw new TokenDecryptionError(`authentication tag is not ${TAG_BYTES} bytes`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(associatedData(keyId, binding));
      decipher.setAuthTag(authTag);
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new TokenDecryptionError(
        'authentication failed (wrong key, or the value belongs to another row)',
      );
    }
  }

  /** The key id a ciphertext was made with, without decrypting it. */
  static keyIdOf(ciphertext: string): string | null {
    const parts = ciphertext.split('.');
    return parts.length === 5 && parts[0] === FORMAT_VERSION ? (parts[1] ?? null) : null;
  }
}

function associatedData(keyId: string, binding: TokenBinding): Buffer {
  // The key id is bound too, so a ciphertext's header cannot be edited to point at another key.
  return Buffer.from(`social-oauth/${FORMAT_VERSION}/${keyId}/${binding.accountId}/${binding.field}`, 'utf8');
}

function b64(buffer: Buffer): string {
  return buffer.toString('base64url');
}

/**
 * Parses `TOKEN_ENCRYPTION_KEYS`: comma-separated `keyId:base64key` entries (standard or url-safe
 * base64 of 32 bytes). The first entry encrypts.
 */
export function parseKeyring(value: string): EncryptionKey[] {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (entries.length === 0) throw new KeyringError('TOKEN_ENCRYPTION_KEYS is empty.');
  return entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    if (colon <= 0) {
      throw new KeyringError(`TOKEN_ENCRYPTION_KEYS entry ${index + 1} must look like "keyId:base64key".`);
    }
    const id = entry.slice(0, colon);
    // Node's base64 decoder takes the url-safe alphabet too.
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== KEY_BYTES) {
      throw new KeyringError(
        `TOKEN_ENCRYPTION_KEYS key "${id}" must decode to ${KEY_BYTES} bytes, got ${key.length}.`,
      );
    }
    return { id, key };
  });
}

export function generateKeyEntry(id: string = `k${Date.now().toString(36)}`): string {
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}
