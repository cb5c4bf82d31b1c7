/**
 * The uploading process of the upload bench (bench/upload.ts): the service as a publishing engine
 * embeds it (SocialOAuth on SQLite, the real platform clients, the HTTP server that serves
 * Instagram's media links), alone in a process with `--expose-gc`, so that its RSS is the service's
 * and nothing else's. The raw baseline PUT runs here too: both sides in the same process. Driven
 * over IPC like bench/simulatorChild.ts: every message `{ id, command }` is answered
 * `{ id, result }` or `{ id, error }`.
 */
import { createReadStream } from 'node:fs';
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { loadConfig } from '../src/config.js';
import { isFinalStatus } from '../src/domain/publication.js';
import { buildApp } from '../src/http/app.js';
import { getProviderClientForAccount } from '../src/index.js';
import { PLATFORM_PUBLISHERS } from '../src/platforms/publishers.js';
import { SocialOAuth } from '../src/service/socialOAuth.js';
import type { SeededTokens } from '../src/simulator/state.js';
import { insertAccount } from './support.js';

export type UploadChildCommand =
  | { op: 'addAccounts'; accounts: SeededTokens[] }
  | { op: 'rawPut'; url: string; path: string; size: number }
  | { op: 'chunkedPut'; url: string; path: string; size: number; chunk: number }
  | { op: 'publish'; accountId: string; path: string }
  | { op: 'concurrent'; items: Array<{ accountId: string; path: string }> };

export interface Sampled {
  ms: number;
  /** CPU time of this process (user + system) during the work. */
  cpuMs: number;
  /** Peak RSS above the level at the start, sampled every 20 ms. */
  growth: number;
  rssBefore: number;
  rssPeak: number;
  rssAfter: number;
}

export interface RawPutResult extends Sampled {
  status: number;
  bytes: number;
  sha256: string;
}

export interface ChunkedPutResult extends Sampled {
  status: number;
  bytes: number;
}

export interface PublishResult extends Sampled {
  status: string;
  platformPostId: string | null;
  platformRef: string | null;
  error: string | null;
}

export interface ConcurrentResult extends Sampled {
  statuses: Record<string, number>;
  publications: Array<{
    accountId: string;
    status: string;
    platformRef: string | null;
    platformPostId: string | null;
  }>;
}

const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc;

/** Runs `work` with RSS sampled every 20 ms in this process, after a full collection. */
async function sampled<T>(work: () => Promise<T>): Promise<T & Sampled> {
  gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const timer = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  const cpu = process.cpuUsage();
  try {
    const value = await work();
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    const rssAfter = process.memoryUsage().rss;
    rssPeak = Math.max(rssPeak, rssAfter);
    return { ...value, ms, cpuMs, growth: rssPeak - rssBefore, rssBefore, rssPeak, rssAfter };
  } finally {
    clearInterval(timer);
  }
}

/** A free port, so that PUBLIC_BASE_URL (the media links Instagram fetches) can name it before the service opens. */
async function reservePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const port = await reservePort();
const publicBaseUrl = `http://127.0.0.1:${port}`;
const config = loadConfig({
  ...process.env,
  REFRESHER_ENABLED: 'false',
  HOST: '127.0.0.1',
  PORT: String(port),
  PUBLIC_BASE_URL: publicBaseUrl,
  LOG_LEVEL: 'silent',
});
// Instagram's real client, with its status look every 50 ms instead of the minute Meta asks for:
// the container's wait is not what this bench measures, and a minute per look would be the whole run.
const instagramSettings = config.providers.instagram;
const app = await SocialOAuth.open({
  config,
  publishers:
    instagramSettings && PLATFORM_PUBLISHERS.instagram
      ? {
          instagram: PLATFORM_PUBLISHERS.instagram(
            { baseUrl: instagramSettings.baseUrl },
            { timeoutMs: 120_000 },
            { ...config.publishing.platforms, instagramStatusIntervalMs: 50, instagramStatusLooks: 12_000 },
          ),
        }
      : {},
});
const http: FastifyInstance = await buildApp({ app });
await http.listen({ host: '127.0.0.1', port });

/** The raw baseline: one streamed PUT of the whole file, read as the clients read it (1 MiB at a time). */
async function rawPut(url: string, path: string, size: number) {
  const answer = await request(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: createReadStream(path, { highWaterMark: MiB }),
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  });
  const body = (await answer.body.json()) as { bytes: number; sha256: string };
  return { status: answer.statusCode, bytes: body.bytes, sha256: body.sha256 };
}

/**
 * The protocol's own cost, without the service: the file PUT chunk after chunk, each request
 * waiting for its answer before the next (as YouTube's 308 and TikTok's sequential chunks make the
 * clients do), each chunk read from its own file stream (as the clients read it), and nothing else.
 */
async function chunkedPut(url: string, path: string, size: number, chunk: number) {
  let status = 0;
  let bytes = 0;
  for (let start = 0; start < size; start += chunk) {
    const end = Math.min(start + chunk, size);
    const answer = await request(url, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start) },
      body: createReadStream(path, { start, end: end - 1, highWaterMark: MiB }),
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
    const body = (await answer.body.json()) as { bytes: number };
    status = answer.statusCode;
    bytes += body.bytes;
  }
  return { status, bytes };
}

/** One publication through the platform's real client, as a publishing engine calls it. */
async function publish(accountId: string, path: string) {
  const client = await getProviderClientForAccount(app, accountId);
  const done = await client.uploadVideo({ file: path, title: 'bench upload' });
  return {
    status: done.status,
    platformPostId: done.platformPostId,
    platformRef: done.platformRef,
    error: done.error === null ? null : `${done.error.code}: ${done.error.message}`,
  };
}

/** Publications created at once, then worked by the publication worker until every one has ended. */
async function concurrent(items: Array<{ accountId: string; path: string }>) {
  const ids: string[] = [];
  for (const item of items) {
    const { publication } = await app.publications.create({
      accountId: item.accountId,
      title: 'bench small',
      media: { kind: 'file', path: item.path, owned: false },
    });
    ids.push(publication.id);
  }
  const worker = app.createPublicationWorker();
  const deadline = Date.now() + 300_000;
  for (;;) {
    await worker.runUntilIdle();
    const all = await Promise.all(ids.map((id) => app.publications.get(id)));
    if (all.every((p) => p !== null && isFinalStatus(p.status)) || Date.now() > deadline) break;
    // YouTube's processing looks come PUBLISH_POLL_INTERVAL_MS after the upload.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const publications = (await Promise.all(ids.map((id) => app.publications.get(id)))).map((p, k) => ({
    accountId: items[k]!.accountId,
    status: p?.status ?? 'missing',
    platformRef: p?.platformRef ?? null,
    platformPostId: p?.platformPostId ?? null,
  }));
  const statuses: Record<string, number> = {};
  for (const p of publications) statuses[p.status] = (statuses[p.status] ?? 0) + 1;
  return { statuses, publications };
}

async function run(command: UploadChildCommand): Promise<unknown> {
  switch (command.op) {
    case 'addAccounts': {
      const ids: string[] = [];
      for (const tokens of command.accounts) ids.push(await insertAccount(app, tokens));
      return ids;
    }
    case 'rawPut':
      return sampled(() => rawPut(command.url, command.path, command.size));
    case 'chunkedPut':
      return sampled(() => chunkedPut(command.url, command.path, command.size, command.chunk));
    case 'publish':
      return sampled(() => publish(command.accountId, command.path));
    case 'concurrent':
      return sampled(() => concurrent(command.items));
  }
}

process.on('message', (message: { id: number; command: UploadChildCommand }) => {
  run(message.command).then(
    (result) => process.send!({ id: message.id, result }),
    (error: unknown) =>
      process.send!({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The parent going away (done, or a bench cut short) ends this process too.
process.on('disconnect', () => {
  void (async () => {
    await http.close();
    await app.close();
    process.exit(0);
  })();
});
process.send!({ ready: publicBaseUrl, gc: gc !== undefined });
