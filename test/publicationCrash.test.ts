import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import type { ProviderSimulator } from '../src/simulator/simulator.js';
import { insertSeededAccount } from './support/accounts.js';
import { openTestApp, testEnv } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { scriptBeside } from './support/passWorker.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';
import { startUploadServer, type UploadServer } from './support/uploadServer.js';

const CHUNK = 256 * 1024;
const CHUNKS = 16;

async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function startWorkerProcess(env: NodeJS.ProcessEnv): {
  child: ChildProcess;
  ready: Promise<void>;
  stderr: () => string;
} {
  const script = scriptBeside(import.meta.url, './support/publicationWorkerProcess');
  const child = spawn(process.execPath, [...script.nodeArgs, script.path], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => String(chunk).includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${stderr}`)));
  });
  return { child, ready, stderr: () => stderr };
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()),
  );

for (const factory of DATABASES) {
  describe(`a publication whose worker is SIGKILLed mid-upload, on ${factory.kind}`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let server: UploadServer;
    let app: SocialOAuth;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      server = await startUploadServer((token) => simulator.isAccessTokenValid('youtube', token));
      app = await openTestApp(database, { env: simulatorEnv(simulator) });
    });
    afterAll(async () => {
      await app?.close();
      await server?.close();
      await simulator?.close();
      await database?.drop();
    });

    it('is resumed by another process in the same session, and the platform counts exactly one post', async () => {
      const account = await insertSeededAccount(storeOf(app).accounts, simulator, 'youtube', {
        externalAccountId: 'yt-crash',
      });
      const size = CHUNKS * CHUNK - 999;
      const content = randomBytes(size);
      const path = join(database.dataDir, 'crash.mp4');
      writeFileSync(path, content);
      // The service opens without publishers here: it only creates the publication.
      const { publication } = await storeOf(app).publishing.repository.insert(
        {
          id: 'pub_crash',
          accountId: account.id,
          provider: 'youtube',
          request: {
            title: 'Crash',
            description: null,
            privacy: null,
            mode: null,
            options: {},
            contentType: 'video/mp4',
          },
          mediaPath: path,
          mediaOwned: false,
          sourceUrl: null,
          totalBytes: size,
          idempotencyKey: null,
        },
        Date.now(),
      );
      const env = testEnv(database, {
        ...simulatorEnv(simulator),
        UPLOAD_SERVER_URL: server.url,
        UPLOAD_CHUNK_BYTES: String(CHUNK),
        PUBLISH_LEASE_SECONDS: '2',
        PUBLISH_INTERVAL_MS: '100',
      });
      // A slow link keeps the upload in flight long enough to be killed in the middle.
      server.putDelayMs = 300;
      const first = startWorkerProcess(env);
      await first.ready;
      await until(() => server.bytesReceived >= 3 * CHUNK, 60_000, 'the first chunks');
      first.child.kill('SIGKILL');
      await exited(first.child);
      const interrupted = (await app.publications.get(publication.id))!;
      expect(interrupted.status).toBe('uploading');
      expect(interrupted.resumableState).not.toBeNull();
      const receivedAtKill = server.bytesReceived;
      expect(receivedAtKill).toBeLessThan(size);

      server.putDelayMs = 0;
      const second = startWorkerProcess(env);
      await second.ready;
      await until(
        async () => (await app.publications.get(publication.id))!.status === 'published',
        60_000,
        'the second worker to publish',
      );
      second.child.kill('SIGTERM');
      await exited(second.child);

      expect(server.inits).toBe(1);
      expect(server.posts).toBe(1);
      expect(server.postedHashes()).toEqual([createHash('sha256').update(content).digest('hex')]);
      // At most the chunk in flight at the kill is sent again (here: none, the server keeps what it got).
      expect(server.bytesReceived).toBeLessThanOrEqual(size + CHUNK);
      const types = (await storeOf(app).ledger.list({ accountId: account.id, limit: 50 })).events.map(
        (e) => e.type,
      );
      expect(types).toEqual(['publication_queued', 'publication_uploading', 'publication_published']);
      // Child processes start slowly on a loaded 2-core machine.
    }, 180_000);
  });
}
