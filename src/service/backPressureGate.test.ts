import { describe, expect, it } from 'vitest';
import { withBackPressure } from './backPressureGate.js';
import { createOutboundGate } from './outboundGate.js';

/** A clock that sleeping moves forward, so the waits are read, not waited. */
function fakeTime() {
  let now = 0;
  const slept: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      slept.push(ms);
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
    slept,
  };
}

describe('withBackPressure', () => {
  it('lets calls through at once while nothing is held', async () => {
    const time = fakeTime();
    const gate = withBackPressure(createOutboundGate({}, time), time);
    (await gate.acquire('instagram'))();
    expect(time.slept).toEqual([]);
  });

  it('holds the platform named, for the time reported, and no other platform', async () => {
    const time = fakeTime();
    const gate = withBackPressure(createOutboundGate({}, time), time);
    gate.holdFor('instagram', 21_600);
    (await gate.acquire('tiktok'))();
    expect(time.slept).toEqual([]);
    (await gate.acquire('instagram'))();
    expect(time.slept).toEqual([21_600]);
    (await gate.acquire('instagram'))();
    expect(time.slept).toEqual([21_600]);
  });

  it('keeps the longer of two holds: a calmer answer does not cut a wait short', async () => {
    const time = fakeTime();
    const gate = withBackPressure(createOutboundGate({}, time), time);
    gate.holdFor('instagram', 38_400);
    time.advance(1_000);
    gate.holdFor('instagram', 2_400);
    (await gate.acquire('instagram'))();
    expect(time.slept).toEqual([37_400]);
  });

  it('ignores a hold of zero or less', async () => {
    const time = fakeTime();
    const gate = withBackPressure(createOutboundGate({}, time), time);
    gate.holdFor('instagram', 0);
    gate.holdFor('instagram', -5);
    (await gate.acquire('instagram'))();
    expect(time.slept).toEqual([]);
  });
});
