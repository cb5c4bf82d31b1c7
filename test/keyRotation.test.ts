import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateKeyEntry,
  parseKeyring,
  TokenCipher,
  TokenDecryptionError,
} from '../src/crypto/tokenCipher.js';
import { ManualClock } from '../src/domain/clock.js';
import { countTokensByKey, rotateKeys } from '../src/service/keyRotation.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { AccountRepository } from '../src/store/accountRepository.js';
import { PublicationRepository } from '../src/store/publicationRepository.js';
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
      const publications = new PublicationRepository(storeOf(app).database, cipher);
      const outcome = await rotateKeys({ accounts, publications, ledger: storeOf(app).ledger }, cipher, {
        batchSize: 1,
        now: () => clock.now(),
      });

      expect(outcome.undecryptable).toEqual([bad.id]);
      expect(outcome.scanned).toBe(2);
      // good: both tokens; bad: its refresh token is still its own and readable.
      expect(outcome.reencrypted).toBe(3);
      const counts = await countTokensByKey(accounts, publications);
      expect(counts.get('next')).toBe(3);
      expect(counts.get('test1')).toBe(1);
      expect((await accounts.findById(good.id))?.accessToken).toBe('access-good');
    });

    it("re-encrypts publications' sealed values (state, source URL, media link): readable with the old key removed", async () => {
      const oldKeys = new TokenCipher(parseKeyring(TEST_KEYS));
      const owner = await storeOf(app).accounts.insert(account('publisher'), clock.now());
      const before = new PublicationRepository(storeOf(app).database, oldKeys);
      const insert = async (id: string) => {
        const created = await before.insert(
          {
            id,
            accountId: owner.id,
            provider: 'youtube',
            request: {
              title: 'Clip',
              description: null,
              privacy: null,
              mode: null,
              options: {},
              contentType: 'video/mp4',
            },
            mediaPath: null,
            mediaOwned: false,
            sourceUrl: `https://storage.example/${id}.mp4?signature=SECRET-${id}`,
            totalBytes: 1000,
            idempotencyKey: null,
          },
          clock.now(),
        );
        const claimed = await before.claimById(created.publication.id, 'worker-1', clock.now(), 60_000);
        expect(claimed).not.toBeNull();
        const state = { sessionUri: `https://upload.example/session/${id}` };
        expect(await before.saveProgress(claimed!, 'worker-1', clock.now(), { state }, null)).toBe(true);
        await before.setMediaLink(id, `link-token-${id}`, `link-hash-${id}`, clock.now() + 3_600_000);
        return id;
      };
      const readable = await insert('pub_rotated');
      const copied = await insert('pub_copied');
      // A sealed state copied from another publication: bound to that id, it cannot decrypt here.
      const row = await storeOf(app)
        .database.db.selectFrom('publications')
        .select('resumable_state')
        .where('id', '=', readable)
        .executeTakeFirstOrThrow();
      await storeOf(app)
        .database.db.updateTable('publications')
        .set({ resumable_state: row.resumable_state })
        .where('id', '=', copied)
        .execute();

      const newEntry = generateKeyEntry('pubnext');
      const both = new TokenCipher(parseKeyring(`${newEntry},${TEST_KEYS}`));
      const onlyNew = new TokenCipher(parseKeyring(newEntry));
      // Before the rotation the new key alone cannot read them.
      await expect(
        new PublicationRepository(storeOf(app).database, onlyNew).findById(readable),
      ).rejects.toBeInstanceOf(TokenDecryptionError);
      const publications = new PublicationRepository(storeOf(app).database, both);
      const outcome = await rotateKeys(
        {
          accounts: new AccountRepository(storeOf(app).database, both),
          publications,
          ledger: storeOf(app).ledger,
        },
        both,
        { batchSize: 1, now: () => clock.now() },
      );

      expect(outcome.publications.scanned).toBe(2);
      // pub_rotated: all three; pub_copied: its source URL and media link, not the copied state.
      expect(outcome.publications.reencrypted).toBe(5);
      expect(outcome.publications.undecryptable).toEqual([copied]);
      const counts = await countTokensByKey(new AccountRepository(storeOf(app).database, both), publications);
      expect(counts.get('pubnext')).toBeGreaterThanOrEqual(5);

      // The old key is gone: the rotated publication's secrets read back with the new key alone.
      const after = new PublicationRepository(storeOf(app).database, onlyNew);
      const read = await after.findById(readable);
      expect(read?.resumableState).toEqual({ sessionUri: `https://upload.example/session/${readable}` });
      expect(read?.sourceUrl).toBe(`https://storage.example/${readable}.mp4?signature=SECRET-${readable}`);
      expect((await after.liveMediaLink(readable, clock.now()))?.token).toBe(`link-token-${readable}`);
      expect((await after.findByMediaLink(`link-hash-${readable}`, clock.now()))?.id).toBe(readable);
      const sealed = await storeOf(app)
        .database.db.selectFrom('publications')
        .select(['resumable_state', 'source_url', 'media_link_token'])
        .where('id', '=', readable)
        .executeTakeFirstOrThrow();
      for (const value of Object.values(sealed)) expect(TokenCipher.keyIdOf(value!)).toBe('pubnext');
      expect(JSON.stringify(sealed)).not.toContain('SECRET-');

      // A second run finds nothing left to do.
      const again = await rotateKeys(
        {
          accounts: new AccountRepository(storeOf(app).database, both),
          publications,
          ledger: storeOf(app).ledger,
        },
        both,
        { now: () => clock.now() },
      );
      expect(again.publications.reencrypted).toBe(0);
    });
  });
}
