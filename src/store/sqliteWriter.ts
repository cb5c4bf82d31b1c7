import { Worker } from 'node:worker_threads';
import type { WriterAnswer, WriterRequest } from './sqliteWriterThread.js';
import type { LeaseOutcome, LeaseWrite, SaveWrite, SqliteRow } from './sqliteWrites.js';

/**
 * Runs SQLite's batched refresh writes on a thread of its own, with its own connection to the file.
 * better-sqlite3 is synchronous: on the service's thread every commit (page writes, the fsync of
 * `synchronous=FULL`) and every wait for the write lock held by another process stopped the event
 * loop, and with it every platform response waiting to be read. In a refresh storm that was a third
 * of the time. The writer thread is to the service what another process on the same file is: its
 * commits are seen by the next read.
 *
 * If the thread dies, what it was doing fails (the callers' own retry logic applies) and the next
 * write starts a new one.
 */
/** Error codes of ours that `isDatabaseUnavailable` reads as "cannot serve right now" (503). */
export const WRITER_UNAVAILABLE_CODES = ['DATABASE_CLOSED', 'DATABASE_WRITER_STOPPED'] as const;

function unavailable(message: string, code: (typeof WRITER_UNAVAILABLE_CODES)[number]): Error {
  return Object.assign(new Error(message), { code });
}

type Waiting = { resolve: (value: unknown) => void; reject: (error: Error) => void };

export class SqliteWriter {
  /** The thread, and the writes sent to it that it has not answered yet. */
  private thread: { worker: Worker; pending: Map<number, Waiting> } | null = null;
  private nextId = 0;
  private closed = false;

  constructor(private readonly path: string) {}

  takeLeases(write: LeaseWrite): Promise<LeaseOutcome> {
    return this.send({ op: 'leases', write }) as Promise<LeaseOutcome>;
  }

  saveTokens(write: SaveWrite): Promise<SqliteRow[]> {
    return this.send({ op: 'save', write }) as Promise<SqliteRow[]>;
  }

  /**
   * Lets the writes already sent finish, then ends the thread. Never cut short: a thread inside a
   * better-sqlite3 call (waiting up to busy_timeout for a lock another process holds) cannot be
   * interrupted, and terminating it there aborts the whole process.
   */
  async close(): Promise<void> {
    this.closed = true;
    const thread = this.thread;
    if (thread === null) return;
    this.thread = null;
    // Messages are handled in order: the writes already sent are answered before it closes.
    const exited = new Promise<void>((resolve) => thread.worker.once('exit', () => resolve()));
    // An idle thread is unref'd: waiting for its exit must keep the process alive.
    thread.worker.ref();
    thread.worker.postMessage('close');
    await exited;
  }

  private send(request: Omit<WriterRequest, 'id'>): Promise<unknown> {
    if (this.closed) return Promise.reject(unavailable('the database is closed', 'DATABASE_CLOSED'));
    const id = this.nextId++;
    const { worker, pending } = this.running();
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      // A write in progress keeps the process alive; an idle thread does not.
      worker.ref();
      worker.postMessage({ ...request, id } as WriterRequest);
    });
  }

  private running(): { worker: Worker; pending: Map<number, Waiting> } {
    if (this.thread !== null) return this.thread;
    const typescript = import.meta.url.endsWith('.ts');
    const script = new URL(`./sqliteWriterThread${typescript ? '.ts' : '.js'}`, import.meta.url);
    const worker = typescript
      ? // Under the tests the sources are TypeScript: the thread registers tsx before loading them.
        new Worker(
          `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(script.href)}); });`,
          { eval: true, workerData: { path: this.path } },
        )
      : new Worker(script, { workerData: { path: this.path } });
    const thread = { worker, pending: new Map<number, Waiting>() };
    worker.on('message', (answer: WriterAnswer) => {
      const waiting = thread.pending.get(answer.id);
      if (waiting === undefined) return;
      thread.pending.delete(answer.id);
      if (thread.pending.size === 0) worker.unref();
      if ('error' in answer) {
        // The SQLite error code (SQLITE_BUSY, SQLITE_FULL, …) is what callers decide on.
        const error = Object.assign(new Error(answer.error.message), { code: answer.error.code });
        error.name = answer.error.name;
        waiting.reject(error);
      } else waiting.resolve(answer.result);
    });
    const fail = (error: Error) => {
      if (this.thread === thread) this.thread = null;
      for (const { reject } of thread.pending.values()) reject(error);
      thread.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) =>
      fail(unavailable(`the SQLite writer thread stopped (exit code ${code})`, 'DATABASE_WRITER_STOPPED')),
    );
    this.thread = thread;
    return thread;
  }
}
