import { createHash, randomBytes } from 'node:crypto';

/**
 * PKCE (RFC 7636) with S256 only: `plain` gives no protection when the authorize URL leaks, and
 * every platform we support that takes PKCE accepts S256.
 */

/** 32 random bytes → 43 base64url characters, inside RFC 7636's 43–128 range. */
export function generateCodeVerifier(): string {
  return randomBytes(32).toString('base64url');
}

export function createS256CodeChallenge(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}
