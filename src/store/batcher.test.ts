import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.js';

/** A run that records its batches and answers each input doubled, after `release` is called. */
function recordingRun() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const run = async (inputs: number[]) => {
    batches.push(inputs);
    await new Promise<void>((resolve) => gates.push(resolve));
    return inputs.map((input) => input * 2);
  };
  const releaseAll = () => {
    for (const release of gates.splice(0)) release();
  };
  return { batches, run, releaseAll };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('Batcher', () => {
  it('gives the calls of one turn one batch, and each caller its own answer', async () => {
    const { batches, run, releaseAll } = recordingRun();
    const batcher = new Batcher(run);
    const answers = Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    await turn();
    releaseAll();
    expect(await answers).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('never puts two inputs with the same key in one batch, and caps the batch size', async () => {
    const { batches, run, releaseAll } = recordingRun();
    const batcher = new Batcher(run, 2, (n: number) => String(n % 10));
    const answers = Promise.all([1, 11, 2, 3].map((n) => batcher.submit(n)));
    await turn();
    releaseAll();
    expect(await answers).toEqual([2, 22, 4, 6]);
    expect(batches).toEqual([
      [1, 2],
      [11, 3],
    ]);
  });

  it('with one batch in flight, gathers what arrives meanwhile into the next one', async () => {
    const { batches, run, releaseAll } = recordingRun();
    const batcher = new Batcher(run, 200, null, 1);
    const first = batcher.submit(1);
    await turn();
    const later = [batcher.submit(2), batcher.submit(3)];
    await turn();
    const more = batcher.submit(4);
    await turn();
    expect(batches).toEqual([[1]]);
    releaseAll();
    expect(await first).toBe(2);
    await turn();
    await turn();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    releaseAll();
    expect(await Promise.all([...later, more])).toEqual([4, 6, 8]);
  });

  it('does not let a stalled batch hold the others back beyond its stall time', async () => {
    const { batches, run, releaseAll } = recordingRun();
    const batcher = new Batcher(run, 200, null, 1, 30);
    const stuck = batcher.submit(1);
    await turn();
    const next = batcher.submit(2);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(batches).toEqual([[1], [2]]);
    releaseAll();
    expect(await Promise.all([stuck, next])).toEqual([2, 4]);
  });

  it('fails every call of a batch whose run fails', async () => {
    const batcher = new Batcher<number, number>(async () => {
      throw new Error('database unavailable');
    });
    const results = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
  });
});
