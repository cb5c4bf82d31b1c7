/**
 * The SQLite writer thread (see sqliteWriter.ts): its own connection to the database file, on
 * which it runs the batched lease takes and token saves it is sent, one at a time, and answers each
 * with the rows or the error. Waiting for the write lock and for the commit's fsync happens here,
 * not on the service's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { StatementCache } from './sqliteConnection.js';
import { type LeaseWrite, type SaveWrite, saveTokens, takeLeases } from './sqliteWrites.js';

export type WriterRequest =
  | { id: number; op: 'leases'; write: LeaseWrite }
  | { id: number; op: 'save'; write: SaveWrite };

export type WriterAnswer =
  | { id: number; result: unknown }
  | { id: number; error: { message: string; code?: string; name: string } };

const prepared = StatementCache.open((workerData as { path: string }).path);

parentPort!.on('message', (request: WriterRequest | 'close') => {
  if (request === 'close') {
    prepared.close();
    parentPort!.close();
    return;
  }
  let answer: WriterAnswer;
  try {
    const result =
      request.op === 'leases' ? takeLeases(prepared, request.write) : saveTokens(prepared, request.write);
    answer = { id: request.id, result };
  } catch (error) {
    const failure = error as Error & { code?: unknown };
    answer = {
      id: request.id,
      error: {
        message: failure.message,
        name: failure.name,
        ...(typeof failure.code === 'string' ? { code: failure.code } : {}),
      },
    };
  }
  parentPort!.postMessage(answer);
});
