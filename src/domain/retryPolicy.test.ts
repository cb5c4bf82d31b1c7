import { describe, expect, it } from 'vitest';
import { backoffDelayMs, nextAttemptDelayMs } from './retryPolicy.js';

const options = { baseMs: 100, maxMs: 1000 };

describe('backoffDelayMs', () => {
  it('doubles the cap each attempt and never exceeds maxMs', () => {
    const top = () => 0.999999;
    expect(backoffDelayMs(1, options, top)).toBe(99);
    expect(backoffDelayMs(2, options, top)).toBe(199);
    expect(backoffDelayMs(3, options, top)).toBe(399);
    expect(backoffDelayMs(10, options, top)).toBe(999);
  });

  it('spreads delays with full jitter, down to zero', () => {
    expect(backoffDelayMs(3, options, () => 0)).toBe(0);
    expect(backoffDelayMs(3, options, () => 0.5)).toBe(200);
  });
});

describe('nextAttemptDelayMs', () => {
  it('never waits less than the platform Retry-After', () => {
    expect(nextAttemptDelayMs(1, 5000, options, () => 0.5)).toBe(5000);
  });

  it('uses the backoff when there is no Retry-After', () => {
    expect(nextAttemptDelayMs(2, null, options, () => 0.5)).toBe(100);
  });
});
