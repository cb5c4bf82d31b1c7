import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderName } from '../../src/domain/providerName.js';
import { storeOf } from '../../src/service/storeAccess.js';
import type { ProviderSimulator } from '../../src/simulator/simulator.js';
import { insertSeededAccount } from '../support/accounts.js';
import { DATABASES, type TestDatabase } from '../support/databases.js';
import { MULTIPART_CONTENT_TYPE, multipartVideo } from '../support/multipart.js';
import { startTestSimulator } from '../support/simulator.js';
import { startTestService, type TestService } from './harness.js';

/**
 * Issue 13, end to end: a file posted to the HTTP API is published by the service's own platform
 * clients (no test publisher) to the simulator's upload endpoints, which model each platform's
 * documentation (docs/PLATFORMS.md, "Publishing"). The simulator counts the posts and hashes the
 * bytes it kept, so "exactly once" and "the same bytes" are read from the platform's side.
 */

for (const factory of DATABASES) {
  describe(`publishing end to end through the platform clients (${factory.kind})`, () => {
    let database: TestDatabase;
    let simulator: ProviderSimulator;
    let service: TestService;
    let counter = 0;

    beforeAll(async () => {
      database = await factory.create();
      simulator = await startTestSimulator();
      service = await startTestService(database, { simulator });
    });
    afterAll(async () => {
      await service?.close();
      await simulator?.close();
      await database?.drop();
    });

    async function publish(provider: ProviderName, content: Buffer, metadata: Record<string, unknown>) {
      const account = await insertSeededAccount(storeOf(service.oauth).accounts, simulator, provider, {
        externalAccountId: `e2e-${provider}-${++counter}`,
      });
      const body = multipartVideo(metadata, content);
      const response = await fetch(`${service.baseUrl}/v1/accounts/${account.id}/publications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${service.apiKey}`,
          'content-type': MULTIPART_CONTENT_TYPE,
        },
        body,
      });
      expect(response.status).toBe(202);
      const created = ((await response.json()) as { publication: { id: string } }).publication;
      await service.oauth.createPublicationWorker().runUntilIdle();
      const read = await service.api('GET', `/v1/publications/${created.id}`);
      return { account, publication: read.body.publication };
    }

    it('YouTube: a resumable session upload, posted once, the same bytes', async () => {
      const content = randomBytes(700_000);
      const { account, publication } = await publish('youtube', content, { title: 'End to end' });
      expect(['processing', 'published']).toContain(publication.status);
      expect(publication.platform_post_id).toEqual(expect.any(String));
      expect(publication.bytes_sent).toBe(content.length);
      expect(simulator.uploads.posts('youtube', account.externalAccountId)).toHaveLength(1);
      const [upload] = simulator.uploads
        .uploads('youtube')
        .filter((u) => u.externalAccountId === account.externalAccountId);
      expect(upload?.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    });

    it('TikTok: creator_info, init with the chunk plan, chunks in order, posted once, the same bytes', async () => {
      const content = randomBytes(600_000);
      const { account, publication } = await publish('tiktok', content, {
        title: 'End to end',
        privacy: 'SELF_ONLY',
      });
      expect(['processing', 'published', 'sent_to_inbox']).toContain(publication.status);
      expect(simulator.uploads.posts('tiktok', account.externalAccountId)).toHaveLength(1);
      const [upload] = simulator.uploads
        .uploads('tiktok')
        .filter((u) => u.externalAccountId === account.externalAccountId);
      expect(upload?.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    });
  });
}
