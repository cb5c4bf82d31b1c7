import type { ProviderName } from '../domain/providerName.js';
import type { AnswerHeaders } from '../platforms/providerHttp.js';
import type { RateLimitHintReader } from '../platforms/rateLimitHints.js';
import { RATE_LIMIT_HINT_READERS } from '../platforms/registry.js';

/**
 * Limits on calls to each platform from this process: at most `maxConcurrent` in flight and at most
 * `ratePerSecond` started per second (a token bucket holding one second of burst). The platform's
 * own 429/Retry-After is still handled by the token service; this keeps us from earning it.
 *
 * Real time, not the injected clock: rate limits are a property of the platform's wall clock, and
 * the year simulation runs with the limit off.
 */
export interface OutboundLimits {
  /** 0 = no limit. */
  ratePerSecond: number;
  /** 0 = no limit. */
  maxConcurrent: number;
}

export interface OutboundGate {
  /** Waits for a slot and a token for the platform; call the returned function when the call is done. */
  acquire(provider: ProviderName): Promise<() => void>;
  /**
   * Reads a platform answer's usage headers (src/providers/rateLimitHints.ts): when they say the
   * limit is (nearly) spent, later calls to that platform wait, so that we slow down before a 429.
   */
  observe(provider: ProviderName, headers: AnswerHeaders): void;
}

/** A token bucket over a monotonic clock; `take` answers how long to wait, 0 when a token was taken. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Takes a token if one is there (returns 0), else returns the ms until one will be. */
  take(now: number): number {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) * this.ratePerSecond) / 1000);
    this.updatedAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond);
  }
}

/** A counting semaphore with FIFO waiters. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter: `active` stays the same.
      if (next) next();
      else this.active--;
    };
  }
}

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createOutboundGate(
  limits: Partial<Record<ProviderName, OutboundLimits>>,
  options: {
    now?: () => number;
    /** Wall-clock time for the platforms' reset times (epoch ms). */
    wallNow?: () => number;
    sleep?: (ms: number) => Promise<void>;
    hintReaders?: Partial<Record<ProviderName, RateLimitHintReader>>;
  } = {},
): OutboundGate {
  const now = options.now ?? (() => performance.now());
  const wallNow = options.wallNow ?? (() => Date.now());
  const sleep = options.sleep ?? sleepMs;
  const readers = options.hintReaders ?? RATE_LIMIT_HINT_READERS;
  /** Per platform: no call starts before this wall-clock time (the platform said it is spent). */
  const pausedUntil = new Map<ProviderName, number>();
  const lanes = new Map<ProviderName, { bucket: TokenBucket | null; slots: Semaphore | null }>();
  const lane = (provider: ProviderName) => {
    let found = lanes.get(provider);
    if (!found) {
      const limit = limits[provider] ?? { ratePerSecond: 0, maxConcurrent: 0 };
      found = {
        bucket:
          limit.ratePerSecond > 0
            ? new TokenBucket(limit.ratePerSecond, Math.max(1, limit.ratePerSecond), now())
            : null,
        slots: limit.maxConcurrent > 0 ? new Semaphore(limit.maxConcurrent) : null,
      };
      lanes.set(provider, found);
    }
    return found;
  };
  return {
    async acquire(provider) {
      const { bucket, slots } = lane(provider);
      const release = slots ? await slots.acquire() : () => {};
      // A pause can be extended by answers that arrive while we wait: look again after each.
      for (let wait = (pausedUntil.get(provider) ?? 0) - wallNow(); wait > 0; ) {
        await sleep(wait);
        wait = (pausedUntil.get(provider) ?? 0) - wallNow();
      }
      if (bucket) {
        for (let wait = bucket.take(now()); wait > 0; wait = bucket.take(now())) await sleep(wait);
      }
      return release;
    },
    observe(provider, headers) {
      const until = readers[provider]?.(headers, wallNow()) ?? null;
      if (until !== null && until > (pausedUntil.get(provider) ?? 0)) pausedUntil.set(provider, until);
    },
  };
}
