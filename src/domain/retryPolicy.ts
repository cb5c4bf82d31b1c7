/**
 * Exponential backoff with full jitter (a random delay between 0 and the exponential cap), so that
 * many refreshers failing at the same moment do not retry in lockstep. Pure: randomness injected.
 * `attempt` is the number of the attempt that just failed, from 1.
 */
export function backoffDelayMs(
  attempt: number,
  options: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}

/**
 * How long to wait before the next attempt: never less than the platform's Retry-After, otherwise
 * the jittered backoff.
 */
export function nextAttemptDelayMs(
  attempt: number,
  retryAfterMs: number | null,
  options: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const backoff = backoffDelayMs(attempt, options, random);
  return retryAfterMs === null ? backoff : Math.max(retryAfterMs, backoff);
}
