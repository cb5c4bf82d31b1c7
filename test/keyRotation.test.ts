import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyEntry, parseKeyring, TokenCipher } from '../src/crypto/tokenCipher.js';
import { ManualClock } from '../src/domain/clock.js';
import { countTokensByKey, rotateKeys } from '../src/service/keyRotation.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { AccountRepository } from '../src/store/accountRepository.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { TEST_KEYS } from './support/keys.js';

for (const factory of DATABASES) {
  describe(`keys rotate on ${factory.kind}`, () => {
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

    const account = (externalAccountId: string) => ({
      ownerId: 'owner',
      provider: 'youtube' as const,
      externalAccountId,
      displayName: null,
      accessToken: `access-${externalAccountId}`,
      refreshToken: `refresh-${externalAccountId}`,
      expiresAt: clock.now() + 3_600_000,
      refreshTokenExpiresAt: null,
      scopes: [],
      tokenIssuedAt: clock.now(),
    });

    it('re-encrypts every readable row, names an unreadable one and goes on', async () => {
      const good = await storeOf(app).accounts.insert(account('good'), clock.now());
      const bad = await storeOf(app).accounts.insert(account('bad'), clock.now());
      // A ciphertext copied from another row: bound to `good`, it cannot decrypt as `bad`.
      const row = await storeOf(app)
        .database.db.selectFrom('social_accounts')
        .select('oauth_access_token')
        .where('id', '=', good.id)
        .executeTakeFirstOrThrow();
      await storeOf(app)
        .database.db.updateTable('social_accounts')
        .set({ oauth_access_token: row.oauth_access_token })
        .where('id', '=', bad.id)
        .execute();

      const cipher = new TokenCipher(parseKeyring(`${generateKeyEntry('next')},${TEST_KEYS}`));
      const accounts = new AccountRepository(storeOf(app).database, cipher);
      const outcome = await rotateKeys(accounts, storeOf(app).ledger, cipher, {
        batchSize: 1,
        now: () => clock.now(),
      });

      expect(outcome.undecryptable).toEqual([bad.id]);
      expect(outcome.scanned).toBe(2);
      // good: both tokens; bad: its refresh token is still its own and readable.
      expect(outcome.reencrypted).toBe(3);
      const counts = await countTokensByKey(accounts);
      expect(counts.get('next')).toBe(3);
      expect(counts.get('test1')).toBe(1);
      expect((await accounts.findById(good.id))?.accessToken).toBe('access-good');
    });
  });
}
