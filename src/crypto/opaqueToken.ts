import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets of the HTTP service (connect states, portal links, API keys): random, handed out
 * once, and stored only as their SHA-256, so a copy of the database opens nothing.
 */

/** 32 random bytes as 43 base64url characters. */
export function randomOpaqueToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

export function hmacSha256(key: string | Buffer, message: string, encoding: 'hex' | 'base64url'): string {
  return createHmac('sha256', key).update(message, 'utf8').digest(encoding);
}

/** Compares two strings without leaking, through timing, how long a prefix they share. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  // timingSafeEqual needs equal lengths; comparing against itself keeps the time independent of b.
  if (left.length !== right.length) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}
