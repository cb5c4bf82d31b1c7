import { z } from 'zod';
import { constantTimeEqual, hmacSha256 } from '../crypto/opaqueToken.js';

/**
 * Meta's `signed_request` (deauthorize and data-deletion callbacks):
 * `base64url(HMAC-SHA256(app secret, <payload part>)) + "." + base64url(JSON payload)`. The HMAC is
 * over the encoded payload as sent, not the decoded JSON. Returns the payload, or null when the
 * signature, algorithm or shape is wrong.
 */
const metaPayloadSchema = z.object({
  algorithm: z.string(),
  // Instagram ids exceed 2^53: accepted as a string, or as a number only while it is exact.
  user_id: z
    .union([z.string().regex(/^\d+$/), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)])
    .transform(String),
  issued_at: z.number().int().optional(),
});
export type MetaSignedRequest = z.output<typeof metaPayloadSchema>;

export function verifyMetaSignedRequest(signedRequest: string, appSecret: string): MetaSignedRequest | null {
  const parts = signedRequest.split('.');
  if (parts.length !== 2) return null;
  const [signature, payload] = parts as [string, string];
  const expected = hmacSha256(appSecret, payload, 'base64url');
  if (!constantTimeEqual(signature.replace(/=+$/, ''), expected)) return null;
  let json: unknown;
  try {
    // Keep user_id exact: JSON.parse would round a 17-digit id.
    const text = Buffer.from(payload, 'base64url')
      .toString('utf8')
      .replace(/("user_id"\s*:\s*)(\d+)/g, '$1"$2"');
    json = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = metaPayloadSchema.safeParse(json);
  if (!parsed.success || parsed.data.algorithm.toUpperCase() !== 'HMAC-SHA256') return null;
  return parsed.data;
}

/**
 * TikTok's `TikTok-Signature: t=<unix seconds>,s=<hex>` where s = HMAC-SHA256(client secret,
 * `${t}.${raw body}`) (developers.tiktok.com/doc/webhooks-verification). The raw body, byte for
 * byte: re-serialized JSON would not match.
 */
export function verifyTikTokSignature(
  header: string | undefined,
  rawBody: string,
  clientSecret: string,
): boolean {
  if (!header) return false;
  const fields = new Map<string, string>();
  for (const part of header.split(',')) {
    const index = part.indexOf('=');
    if (index > 0) fields.set(part.slice(0, index).trim(), part.slice(index + 1).trim());
  }
  const timestamp = fields.get('t');
  const signature = fields.get('s');
  if (!timestamp || !/^\d+$/.test(timestamp) || !signature) return false;
  return constantTimeEqual(
    signature.toLowerCase(),
    hmacSha256(clientSecret, `${timestamp}.${rawBody}`, 'hex'),
  );
}

/** Test and simulator helpers: how the platforms sign. */
export function signMetaRequest(payload: Record<string, unknown>, appSecret: string): string {
  const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${hmacSha256(appSecret, encoded, 'base64url')}.${encoded}`;
}

export function signTikTokBody(rawBody: string, clientSecret: string, timestampSeconds: number): string {
  return `t=${timestampSeconds},s=${hmacSha256(clientSecret, `${timestampSeconds}.${rawBody}`, 'hex')}`;
}
