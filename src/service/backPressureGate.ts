import type { ProviderName } from '../domain/providerName.js';
import type { BackPressureSink } from '../providers/provider.js';
import type { OutboundGate } from './outboundGate.js';

/**
 * An outbound gate that also holds a platform's calls when a provider reports back-pressure (Meta's
 * usage headers nearing 100 %): `acquire` first waits out the hold, then the inner gate's own rate
 * and concurrency limits. Kept apart from outboundGate.ts, which owns the configured limits; this
 * one only adds what the platform said about itself.
 *
 * Real time, like the inner gate: a platform's usage windows run on its wall clock.
 */
export function withBackPressure(
  inner: OutboundGate,
  options: { now?: () => number; sleep?: (ms: number) => Promise<void> } = {},
): OutboundGate & BackPressureSink {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const holdUntil = new Map<ProviderName, number>();
  return {
    holdFor(provider, ms) {
      if (!(ms > 0)) return;
      // Holds only lengthen: an answer at 80 % does not cut short the wait an answer at 95 % began.
      holdUntil.set(provider, Math.max(holdUntil.get(provider) ?? 0, now() + ms));
    },
    async acquire(provider) {
      // Re-read after each sleep: another answer may have lengthened the hold meanwhile.
      for (let wait = (holdUntil.get(provider) ?? 0) - now(); wait > 0; ) {
        await sleep(wait);
        wait = (holdUntil.get(provider) ?? 0) - now();
      }
      return inner.acquire(provider);
    },
  };
}
