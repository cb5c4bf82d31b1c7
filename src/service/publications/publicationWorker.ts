import { randomUUID } from 'node:crypto';
import type { PublishingSettings } from '../../config.js';
import type { Clock } from '../../domain/clock.js';
import type { Logger } from '../../domain/logger.js';
import type { ProviderName } from '../../domain/providerName.js';
import type { Publication } from '../../domain/publication.js';
import type { PublicationRepository } from '../../store/publicationRepository.js';
import { describe } from '../refreshOutcomes.js';
import type { PublicationRunner } from './publicationRunner.js';

export interface PublicationWorkerDeps {
  publications: PublicationRepository;
  runner: PublicationRunner;
  clock: Clock;
  logger: Logger;
  settings: PublishingSettings;
  /** The platforms this process can publish to: it takes no other publication. */
  providers: readonly ProviderName[];
  instanceId: string;
  /** Subscribes to "a publication was just created here". */
  onWake?: (listener: () => void) => () => void;
}

/**
 * Works publications from any process (`serve`, `worker`): takes due ones (queued, interrupted
 * mid-upload, waiting for a processing poll, retrying) under a lease, with at most
 * PUBLISH_CONCURRENCY at a time per platform and PUBLISH_STARTS_PER_MINUTE started per platform.
 * A process that dies leaves its leases to lapse; another takes the publications over and the
 * platform clients resume from the saved state (never a second init).
 */
export class PublicationWorker {
  private readonly active = new Map<ProviderName, number>();
  private readonly buckets = new Map<ProviderName, StartBudget | null>();
  private readonly inFlight = new Set<Promise<void>>();
  private wakeUp: (() => void) | null = null;

  constructor(private readonly deps: PublicationWorkerDeps) {
    const rate = deps.settings.startsPerMinute;
    for (const provider of deps.providers) {
      this.active.set(provider, 0);
      this.buckets.set(provider, rate > 0 ? new StartBudget(rate, Math.max(1, Math.min(rate, 10))) : null);
    }
  }

  /** Runs until `signal` aborts, then lets the runs in flight hand their publications back. */
  async run(signal: AbortSignal): Promise<void> {
    const unsubscribe = this.deps.onWake?.(() => this.wakeUp?.());
    try {
      while (!signal.aborted) {
        let claimed = 0;
        try {
          claimed = await this.claimAndStart(signal);
        } catch (error) {
          this.deps.logger.error({ err: describe(error) }, 'publication worker pass failed');
        }
        if (claimed === 0 && !signal.aborted) await this.idle(this.deps.settings.intervalMs, signal);
      }
    } finally {
      unsubscribe?.();
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /** Works every due publication until none is left (tests, `worker --once`). */
  async runUntilIdle(signal: AbortSignal = new AbortController().signal): Promise<void> {
    for (;;) {
      const claimed = await this.claimAndStart(signal);
      if (claimed === 0 && this.inFlight.size === 0) return;
      if (claimed === 0) await Promise.race(this.inFlight);
    }
  }

  /** Takes what the free slots and rate limits allow and starts it; returns how many. */
  private async claimAndStart(signal: AbortSignal): Promise<number> {
    const { publications, clock, runner, settings } = this.deps;
    let total = 0;
    for (const provider of this.deps.providers) {
      if (signal.aborted) break;
      const free = settings.concurrency - (this.active.get(provider) ?? 0);
      const budget = this.buckets.get(provider) ?? null;
      const allowed = budget === null ? free : Math.min(free, budget.available());
      if (allowed <= 0) continue;
      const owner = `${this.deps.instanceId}/${randomUUID().slice(0, 8)}`;
      const claimed = await publications.claimDue({
        owner,
        now: clock.now(),
        leaseMs: runner.leaseMs,
        limit: allowed,
        providers: [provider],
      });
      budget?.spend(claimed.length);
      for (const publication of claimed) this.start(publication, owner, signal);
      total += claimed.length;
    }
    return total;
  }

  private start(publication: Publication, owner: string, signal: AbortSignal): void {
    const provider = publication.provider;
    this.active.set(provider, (this.active.get(provider) ?? 0) + 1);
    const task = this.deps.runner
      .run(publication, owner, { signal })
      .catch((error: unknown) =>
        this.deps.logger.error(
          { publicationId: publication.id, err: describe(error) },
          'publication run failed',
        ),
      )
      .finally(() => {
        this.active.set(provider, (this.active.get(provider) ?? 1) - 1);
        this.inFlight.delete(task);
        this.wakeUp?.();
      });
    this.inFlight.add(task);
  }

  private idle(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
  }
}

/**
 * Starts allowed per minute, as a token bucket that is asked first and charged for what was
 * actually claimed (an idle look at an empty queue costs nothing). Real time: a platform's limits
 * run on its wall clock.
 */
class StartBudget {
  private tokens: number;
  private updatedAt = performance.now();

  constructor(
    private readonly perMinute: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  available(): number {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) * this.perMinute) / 60_000);
    this.updatedAt = now;
    return Math.floor(this.tokens);
  }

  spend(count: number): void {
    this.tokens -= count;
  }
}
