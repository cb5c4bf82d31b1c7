import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/domain/clock.js';
import { ApiKeys, VERIFIED_KEY_TTL_MS } from '../src/service/apiKeys.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { ApiKeyRepository } from '../src/store/apiKeyRepository.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';

for (const factory of DATABASES) {
  describe(`API key verification on ${factory.kind}`, () => {
    let database: TestDatabase;
    let app: SocialOAuth;
    const clock = new ManualClock();

    beforeAll(async () => {
      database = await factory.create();
      app = await openTestApp(database, { clock });
    });
    afterAll(async () => {
      await app?.close();
      await database?.drop();
    });

    it('a key revoked by another process stops working within VERIFIED_KEY_TTL_MS; in this one, at once', async () => {
      // Two service processes: each has its own cache, both read one table.
      const here = new ApiKeys(new ApiKeyRepository(storeOf(app).database), clock);
      const elsewhere = new ApiKeys(new ApiKeyRepository(storeOf(app).database), clock);
      const { key, summary } = await here.create('publisher');
      expect(await here.verify(key)).not.toBeNull();

      await elsewhere.revoke(summary.id);
      // Trusted from the cache a moment longer here, never past the TTL.
      clock.advance(VERIFIED_KEY_TTL_MS - 1);
      expect(await here.verify(key)).not.toBeNull();
      clock.advance(1);
      expect(await here.verify(key)).toBeNull();

      const second = await here.create('second');
      expect(await here.verify(second.key)).not.toBeNull();
      await here.revoke(second.summary.id);
      expect(await here.verify(second.key)).toBeNull();
    });

    it('the cache never skips the secret: a wrong secret for a cached id is refused', async () => {
      const keys = new ApiKeys(new ApiKeyRepository(storeOf(app).database), clock);
      const { key } = await keys.create('cached');
      expect(await keys.verify(key)).not.toBeNull();
      const forged = `${key.slice(0, -4)}${key.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      expect(await keys.verify(forged)).toBeNull();
    });
  });
}
