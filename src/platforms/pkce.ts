import { createHash, randomBytes } from 'node:crypto';

/**
 * PKCE (RFC 7636) with S256 only: `plain` gives no protection when the authorize URL leaks, and
 * every platform we support that takes PKCE accepts S256.
 */

/** 32 random bytes → 43 base64url characters, inside RFC 7636's 43–128 range. */
export function generateCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

/** RFC 7636 §4.2: BASE64URL(SHA256(verifier)), what Google (and the RFC) expect. */
export function createS256CodeChallenge(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/**
 * TikTok's S256 challenge: the lowercase **hex** SHA-256 of the verifier, not base64url (TikTok
 * Login Kit for Desktop, "Generate a code verifier and code challenge": "You must use hex encoding
 * of SHA256 to generate the code challenge"). A base64url challenge is refused before consent.
 */
export function createS256HexCodeChallenge(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('hex');
}
