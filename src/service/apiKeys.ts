import { randomBytes } from 'node:crypto';
import { constantTimeEqual, randomOpaqueToken, sha256Hex } from '../crypto/opaqueToken.js';
import type { Clock } from '../domain/clock.js';
import type { ApiKeyRecord, ApiKeyRepository } from '../store/apiKeyRepository.js';

/**
 * `sok_<id>_<secret>`: the id is public and finds the row; only the SHA-256 of the whole key is
 * stored, and it is compared in constant time. The prefix makes a leaked key easy to grep for.
 */
const KEY_PATTERN = /^sok_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** A key as listed: never the key or its hash. */
export interface ApiKeySummary {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** How often a key's last_used_at is written at most: one write per request would be waste. */
const TOUCH_INTERVAL_MS = 60_000;

/**
 * A verified key is trusted for this long without reading its row again: the token endpoint's
 * database cost is then the account's row alone. Revoking through this process takes effect at
 * once; a revocation made by another process, within this many milliseconds.
 */
export const VERIFIED_KEY_TTL_MS = 5_000;

export class ApiKeys {
  private readonly lastTouched = new Map<string, number>();
  private readonly verified = new Map<string, { record: ApiKeyRecord; until: number }>();

  constructor(
    private readonly repository: ApiKeyRepository,
    private readonly clock: Clock,
  ) {}

  /** Creates a key and returns it: the only time it exists outside the caller's hands. */
  async create(name: string): Promise<{ key: string; summary: ApiKeySummary }> {
    const id = randomBytes(6).toString('hex');
    const key = `sok_${id}_${randomOpaqueToken()}`;
    const now = this.clock.now();
    await this.repository.insert({ id, name, keyHash: sha256Hex(key), createdAt: now });
    return { key, summary: { id, name, createdAt: now, lastUsedAt: null, revokedAt: null } };
  }

  /** The key's summary when it is a live key, else null (malformed, unknown, wrong secret, revoked). */
  async verify(presented: string): Promise<ApiKeySummary | null> {
    const match = KEY_PATTERN.exec(presented);
    if (!match) return null;
    const id = match[1]!;
    const now = this.clock.now();
    const cached = this.verified.get(id);
    const record = cached && cached.until > now ? cached.record : await this.repository.findById(id);
    if (!record || record.revokedAt !== null) return null;
    // The hash is compared on every request, cached or not: the cache never skips the secret.
    if (!constantTimeEqual(sha256Hex(presented), record.keyHash)) return null;
    if (record !== cached?.record) this.verified.set(id, { record, until: now + VERIFIED_KEY_TTL_MS });
    if (now - (this.lastTouched.get(record.id) ?? 0) >= TOUCH_INTERVAL_MS) {
      this.lastTouched.set(record.id, now);
      await this.repository.touch(record.id, now);
    }
    return summarize(record);
  }

  async list(): Promise<ApiKeySummary[]> {
    return (await this.repository.list()).map(summarize);
  }

  async count(): Promise<number> {
    return this.repository.count();
  }

  /** False when there is no such live key. */
  revoke(id: string): Promise<boolean> {
    this.verified.delete(id);
    return this.repository.revoke(id, this.clock.now());
  }
}

function summarize(record: ApiKeyRecord): ApiKeySummary {
  return {
    id: record.id,
    name: record.name,
    createdAt: record.createdAt,
    lastUsedAt: record.lastUsedAt,
    revokedAt: record.revokedAt,
  };
}
