/**
 * "n requests per minute per token" (TikTok: init 6, status/fetch 30, creator_info 20), kept on
 * our side: a call reserves the earliest slot that keeps at most `limit` calls in any window and
 * is told how long to wait for it, instead of being refused with rate_limit_exceeded. Pure apart
 * from its memory of reserved slots; time comes from the caller.
 */
export class RequestWindow {
  private readonly slots = new Map<string, number[]>();

  constructor(private readonly windowMs = 60_000) {}

  /** Reserves a slot for `key` at or after `nowMs`; returns the milliseconds to wait for it. */
  reserve(key: string, limit: number, nowMs: number): number {
    const recent = (this.slots.get(key) ?? []).filter((at) => at > nowMs - this.windowMs);
    const at =
      recent.length >= limit ? Math.max(nowMs, recent[recent.length - limit]! + this.windowMs) : nowMs;
    recent.push(at);
    this.slots.set(key, recent);
    this.forgetIdle(nowMs);
    return at - nowMs;
  }

  /** Tokens rotate every few hours: drop the keys whose slots are all past, so the map stays small. */
  private forgetIdle(nowMs: number): void {
    if (this.slots.size < 1024) return;
    for (const [key, slots] of this.slots) {
      if ((slots.at(-1) ?? 0) <= nowMs - this.windowMs) this.slots.delete(key);
    }
  }
}
