import type { ProviderName } from '../domain/providerName.js';

/**
 * Fault injection: the next N requests fail, hang or are rate limited, or each request fails with a
 * probability drawn from an injected (seedable) random source, for chaos tests that replay.
 */

/** Which endpoints of a platform a fault hits. Default: all but the browser's authorize redirect. */
export type RouteKind = 'authorize' | 'token' | 'refresh' | 'revoke' | 'profile';

export interface FaultPlan {
  /** The next n matching requests answer `status` (default 503) in the platform's error format. */
  failNext?: number;
  status?: number;
  /** The next n matching requests get no answer for `hangMs`; then the socket is dropped. */
  hangNext?: number;
  hangMs?: number;
  /**
   * The next n matching requests are processed by the platform (a refresh rotates the token) but
   * the answer never arrives: the socket hangs for `hangMs`, then drops. The worst case for
   * rotating refresh tokens, which no client can recover from.
   */
  dropAnswerNext?: number;
  /**
   * The next n matching requests are processed by the platform (a refresh rotates the token), and
   * its answer reaches the client altered by `rewrite`: a field missing, of the wrong type or with
   * an absurd value, an error envelope on a 2xx, a body that is not JSON. How a client meets a
   * platform that changed its format, or a proxy that mangles answers.
   */
  rewriteNext?: number;
  rewrite?: AnswerRewrite;
  /** The platform refused before doing the work (an error envelope it meant): nothing rotates. */
  rewriteSkipsPlatform?: boolean;
  /** The next n matching requests answer 429 (or the platform's throttling error) with Retry-After. */
  rateLimitNext?: number;
  retryAfterSeconds?: number;
  /** Probability (0..1) that any matching request fails with `status`. */
  errorRate?: number;
  /** Probability (0..1) that any matching request hangs. */
  hangRate?: number;
  /** Overrides the simulator's random source for this plan. */
  random?: () => number;
  routes?: readonly RouteKind[];
}

/** The platform's answer as it would have been sent. */
export interface PlatformAnswer {
  status: number;
  body: unknown;
}

/** Returns the answer to send instead: a JSON body (`body`) or raw text (`text`), with a status. */
export type AnswerRewrite = (
  answer: PlatformAnswer,
) => { status?: number; body: unknown } | { status?: number; text: string };

export type FaultAction =
  | { kind: 'none' }
  | { kind: 'rewrite'; rewrite: AnswerRewrite; skipsPlatform: boolean }
  | { kind: 'fail'; status: number }
  | { kind: 'hang'; ms: number }
  | { kind: 'dropAnswer'; ms: number }
  | { kind: 'rateLimit'; retryAfterSeconds: number | null };

const DEFAULT_ROUTES: readonly RouteKind[] = ['token', 'refresh', 'revoke', 'profile'];
const DEFAULT_HANG_MS = 30_000;

export class FaultInjector {
  private readonly plans = new Map<ProviderName, FaultPlan>();

  constructor(private readonly random: () => number = Math.random) {}

  /** Replaces the provider's plan. */
  set(provider: ProviderName, plan: FaultPlan): void {
    this.plans.set(provider, { ...plan });
  }

  clear(provider?: ProviderName): void {
    if (provider === undefined) this.plans.clear();
    else this.plans.delete(provider);
  }

  get(provider: ProviderName): Readonly<FaultPlan> | undefined {
    return this.plans.get(provider);
  }

  /** Decides the fate of one request, spending one of the counted faults. Counted ones come first. */
  next(provider: ProviderName, route: RouteKind): FaultAction {
    const plan = this.plans.get(provider);
    if (plan === undefined || !(plan.routes ?? DEFAULT_ROUTES).includes(route)) return { kind: 'none' };
    const hangMs = plan.hangMs ?? DEFAULT_HANG_MS;
    const status = plan.status ?? 503;

    if ((plan.hangNext ?? 0) > 0) {
      plan.hangNext = (plan.hangNext ?? 0) - 1;
      return { kind: 'hang', ms: hangMs };
    }
    if ((plan.dropAnswerNext ?? 0) > 0) {
      plan.dropAnswerNext = (plan.dropAnswerNext ?? 0) - 1;
      return { kind: 'dropAnswer', ms: hangMs };
    }
    if ((plan.rewriteNext ?? 0) > 0 && plan.rewrite !== undefined) {
      plan.rewriteNext = (plan.rewriteNext ?? 0) - 1;
      return { kind: 'rewrite', rewrite: plan.rewrite, skipsPlatform: plan.rewriteSkipsPlatform ?? false };
    }
    if ((plan.failNext ?? 0) > 0) {
      plan.failNext = (plan.failNext ?? 0) - 1;
      return { kind: 'fail', status };
    }
    if ((plan.rateLimitNext ?? 0) > 0) {
      plan.rateLimitNext = (plan.rateLimitNext ?? 0) - 1;
      return { kind: 'rateLimit', retryAfterSeconds: plan.retryAfterSeconds ?? null };
    }
    const random = plan.random ?? this.random;
    if (plan.hangRate !== undefined && random() < plan.hangRate) return { kind: 'hang', ms: hangMs };
    if (plan.errorRate !== undefined && random() < plan.errorRate) return { kind: 'fail', status };
    return { kind: 'none' };
  }
}

/** mulberry32: a tiny deterministic random source, so a chaos run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
