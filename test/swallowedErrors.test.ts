import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/domain/logger.js';
import { buildApp } from '../src/http/app.js';
import type { SocialOAuth } from '../src/service/socialOAuth.js';
import { storeOf } from '../src/service/storeAccess.js';
import { eventually } from './http/harness.js';
import { openTestApp } from './support/app.js';
import { DATABASES, type TestDatabase } from './support/databases.js';
import { simulatorEnv, startTestSimulator } from './support/simulator.js';

/** A logger that keeps what it is told, to read it back (pino's shape, as src/domain/logger.ts). */
function recordingLogger() {
  const lines: Array<{ level: string; obj: object; msg: string }> = [];
  const at =
    (level: string) =>
    (obj: object, msg = '') =>
      lines.push({ level, obj, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

/**
 * Issue 10, item 14: failures that were swallowed without a log line (`.catch(() => {})`): the
 * cleanup of expired connect and portal sessions, and an idle PostgreSQL connection that fails.
 * The failures are real: the database refuses the DELETE (a trigger), the server ends a connection.
 */
for (const factory of DATABASES) {
  describe(`errors are logged, not swallowed (${factory.kind})`, () => {
    let database: TestDatabase;
    let app: SocialOAuth;
    const { logger, lines } = recordingLogger();

    beforeAll(async () => {
      database = await factory.create();
      const simulator = await startTestSimulator();
      app = await openTestApp(database, { logger, env: simulatorEnv(simulator) });
      return async () => {
        await app?.close();
        await simulator.close();
      };
    });
    afterAll(async () => {
      await database?.drop();
    });

    it('a failed cleanup of expired connect and portal sessions is logged', async () => {
      const refuse = (table: string) =>
        factory.kind === 'sqlite'
          ? sql
              .raw(
                `create trigger refuse_${table}_delete before delete on ${table} begin select raise(abort, 'deletes refused'); end`,
              )
              .execute(storeOf(app).database.db)
          : sql
              .raw(
                `create function refuse_${table}_delete() returns trigger language plpgsql as $$ begin raise exception 'deletes refused'; end $$;
                 create trigger refuse_${table}_delete before delete on ${table} for each statement execute function refuse_${table}_delete();`,
              )
              .execute(storeOf(app).database.db);
      // Sessions expired long ago, for the cleanup to find (SQLite's triggers fire per row).
      const longAgo = Date.now() - 3 * 86_400_000;
      await storeOf(app)
        .database.db.insertInto('connect_sessions')
        .values({
          id: 'expired-connect',
          provider: 'tiktok',
          owner_id: 'cleanup-owner',
          return_to: 'https://publisher.example/',
          code_verifier: null,
          created_at: longAgo,
          expires_at: longAgo + 600_000,
          used_at: null,
        })
        .execute();
      await storeOf(app)
        .database.db.insertInto('portal_sessions')
        .values({
          id: 'expired-portal',
          owner_id: 'cleanup-owner',
          created_at: longAgo,
          expires_at: longAgo + 1,
        })
        .execute();
      await refuse('connect_sessions');
      await refuse('portal_sessions');
      const http = await buildApp({ app });
      try {
        await http.socialOAuth.connect.start({
          provider: 'tiktok',
          ownerId: 'cleanup-owner',
          returnTo: null,
        });
        await http.socialOAuth.portal.create('cleanup-owner');
        await eventually(() => {
          const messages = lines.filter((line) => line.level === 'warn').map((line) => line.msg);
          expect(messages).toContain('expired connect sessions could not be deleted');
          expect(messages).toContain('expired portal sessions could not be deleted');
        });
      } finally {
        await http.close();
      }
    });

    it.runIf(factory.kind === 'postgres')(
      'an idle PostgreSQL connection ended by the server is logged',
      async () => {
        await storeOf(app).accounts.list({ limit: 1 });
        const admin = new pg.Client({ connectionString: database.databaseUrl });
        await admin.connect();
        try {
          await admin.query(
            'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
          );
        } finally {
          await admin.end();
        }
        await eventually(() =>
          expect(lines.map((line) => line.msg)).toContain(
            'an idle PostgreSQL connection failed; the pool will open another',
          ),
        );
      },
    );
  });
}
