/**
 * Gathers the calls made within one turn of the event loop into a single call of `run`, so that
 * many concurrent refreshes share one statement and one commit instead of paying for one each.
 * A durable commit is the dearest thing a refresh does (a WAL flush on PostgreSQL, an fsync on
 * SQLite); during a refresh storm, a hundred refreshes finish within the same few milliseconds.
 *
 * `run` gets the batch's inputs and returns one outcome per input, in order. If it throws, every
 * call of that batch fails with the error: the caller's own retry logic decides what to do.
 */
export class Batcher<Input, Output> {
  private pending: Array<{
    input: Input;
    resolve: (output: Output) => void;
    reject: (error: unknown) => void;
  }> = [];
  private scheduled = false;
  private inFlight = 0;
  /** When the latest batch started (monotonic ms), and the timer that looks again after a stall. */
  private lastStartedAt = 0;
  private stallTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly run: (inputs: Input[]) => Promise<Output[]>,
    private readonly maxBatchSize = 200,
    /** Two inputs with the same key never share a batch (a statement touches a row once). */
    private readonly keyOf: ((input: Input) => string) | null = null,
    /**
     * Batches running at once. While they run, new calls gather into the next batch (group
     * commit): the busier the database, the bigger and fewer the statements.
     */
    private readonly maxInFlight = Number.POSITIVE_INFINITY,
    /**
     * A batch still running after this long does not hold the others back any more: one statement
     * stuck on a dead connection must not stop every read of the process.
     */
    private readonly stallMs = 250,
  ) {}

  submit(input: Input): Promise<Output> {
    return new Promise<Output>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O callbacks of this turn: those are the calls that arrive together.
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Resolves once nothing is waiting or running, and nothing new came within a turn: what a
   * shutdown waits for, so that no save still gathering is cut off. Gives up after `maxMs`.
   */
  async drain(maxMs = 10_000): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (performance.now() < deadline) {
      if (this.pending.length === 0 && this.inFlight === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.pending.length === 0 && this.inFlight === 0) return;
      } else await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private flush(): void {
    this.scheduled = false;
    while (
      this.pending.length > 0 &&
      (this.inFlight < this.maxInFlight || performance.now() - this.lastStartedAt >= this.stallMs)
    ) {
      const batch = this.take();
      this.inFlight++;
      this.lastStartedAt = performance.now();
      this.run(batch.map((entry) => entry.input))
        .then(
          (outputs) => {
            for (const [index, entry] of batch.entries()) entry.resolve(outputs[index] as Output);
          },
          (error: unknown) => {
            for (const entry of batch) entry.reject(error);
          },
        )
        .finally(() => {
          this.inFlight--;
          if (this.pending.length > 0 && !this.scheduled) {
            this.scheduled = true;
            setImmediate(() => this.flush());
          }
        });
    }
    if (this.pending.length > 0 && this.stallTimer === null) {
      // Held back by a batch on the wire: look again once it counts as stalled.
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.flush();
      }, this.stallMs);
      this.stallTimer.unref();
    }
  }

  private take() {
    if (this.keyOf === null) return this.pending.splice(0, this.maxBatchSize);
    const batch: typeof this.pending = [];
    const rest: typeof this.pending = [];
    const keys = new Set<string>();
    for (const entry of this.pending) {
      const key = this.keyOf(entry.input);
      if (batch.length < this.maxBatchSize && !keys.has(key)) {
        keys.add(key);
        batch.push(entry);
      } else rest.push(entry);
    }
    this.pending = rest;
    return batch;
  }
}
