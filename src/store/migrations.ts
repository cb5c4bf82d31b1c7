import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import type { StoreDatabase } from './database.js';
import { dialectOf } from './dialect.js';
import type { SchemaDialect } from './schemaDialects.js';

/**
 * Versioned migrations, kept in code (not files) so they run the same from sources and from the
 * built package. Each goes up and down. Names sort in order.
 */

/** Going down past this one deletes every stored token. */
export const TOKENS_MIGRATION = '001_social_accounts';

// biome-ignore lint/suspicious/noExplicitAny: migrations work on the schema as it was then, not as typed now.
type AnyDb = Kysely<any>;

function migrationsFor(schema: SchemaDialect): Record<string, Migration> {
  // Epoch-ms columns: BIGINT on PostgreSQL; on SQLite "bigint" has INTEGER affinity (64-bit).
  const serialPrimaryKey = schema.serialPrimaryKey;
  return {
    '001_social_accounts': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('social_accounts')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('owner_id', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('external_account_id', 'text', (c) => c.notNull())
          .addColumn('display_name', 'text')
          .addColumn('oauth_access_token', 'text')
          .addColumn('oauth_refresh_token', 'text')
          .addColumn('oauth_expires_at', 'bigint')
          .addColumn('oauth_refresh_expires_at', 'bigint')
          .addColumn('oauth_scopes', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('active'))
          .addColumn('token_issued_at', 'bigint')
          .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_refresh_at', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('refresh_lease_owner', 'text')
          .addColumn('refresh_lease_until', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('social_accounts_provider_external_unique', [
            'provider',
            'external_account_id',
          ])
          .addCheckConstraint(
            'social_accounts_provider_check',
            sql`provider in ('instagram', 'tiktok', 'youtube')`,
          )
          .addCheckConstraint(
            'social_accounts_status_check',
            sql`status in ('active', 'needs_reauth', 'revoked')`,
          )
          .execute();
        await db.schema
          .createIndex('social_accounts_owner_idx')
          .on('social_accounts')
          .columns(['owner_id'])
          .execute();
        // The background refresher finds due accounts through this index, never by a full scan.
        await db.schema
          .createIndex('social_accounts_status_expiry_idx')
          .on('social_accounts')
          .columns(['status', 'oauth_expires_at'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('social_accounts').execute();
      },
    },
    '002_oauth_events': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('oauth_events')
          .addColumn('seq', serialPrimaryKey.type as 'integer', (c) => serialPrimaryKey.build(c))
          .addColumn('id', 'text', (c) => c.notNull().unique())
          // No foreign key: the ledger outlives deleted accounts.
          .addColumn('account_id', 'text', (c) => c.notNull())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('provider_error_code', 'text')
          .addColumn('detail', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('oauth_events_account_seq_idx')
          .on('oauth_events')
          .columns(['account_id', 'seq'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('oauth_events').execute();
      },
    },
    // Issue 3, the HTTP service. A connect session is one pending authorization: the row is found by
    // the SHA-256 of its state (the state itself is never stored) and holds the PKCE verifier
    // encrypted with the token keyring.
    '003_connect_sessions': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('connect_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('owner_id', 'text', (c) => c.notNull())
          .addColumn('return_to', 'text', (c) => c.notNull())
          .addColumn('code_verifier', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('used_at', 'bigint')
          .execute();
        await db.schema
          .createIndex('connect_sessions_expires_idx')
          .on('connect_sessions')
          .columns(['expires_at'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('connect_sessions').execute();
      },
    },
    // API keys are stored as SHA-256 hashes; the id is the non-secret part of the key, for lookup.
    '004_api_keys': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('key_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('api_keys').execute();
      },
    },
    // Status-page sessions, found by the SHA-256 of the link's token (also the cookie's value).
    '005_portal_sessions': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('portal_sessions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('owner_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('portal_sessions_expires_idx')
          .on('portal_sessions')
          .columns(['expires_at'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('portal_sessions').execute();
      },
    },
    // Issue 4, the background refresher. `next_refresh_at` is when the refresh policy wants the
    // account refreshed to stay alive (null: not active, or not scheduled yet); workers find due
    // accounts through the index and claim them by moving it forward, so a worker that dies leaves
    // nothing claimed for longer than the claim. `refresh_failures` counts consecutive failures for
    // the retry backoff.
    '006_refresh_schedule': {
      async up(db: AnyDb) {
        await db.schema.alterTable('social_accounts').addColumn('next_refresh_at', 'bigint').execute();
        await db.schema
          .alterTable('social_accounts')
          .addColumn('refresh_failures', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createIndex('social_accounts_next_refresh_idx')
          .on('social_accounts')
          .columns(['status', 'next_refresh_at'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('social_accounts_next_refresh_idx').execute();
        await db.schema.alterTable('social_accounts').dropColumn('refresh_failures').execute();
        await db.schema.alterTable('social_accounts').dropColumn('next_refresh_at').execute();
      },
    },
    // Issue 4, the refresh storm. Every refresh rewrites an account row twice (lease, then tokens),
    // so what a row write costs is what a storm costs. (status, oauth_expires_at) has found nothing
    // since the refresher moved to next_refresh_at, yet every save moved its entry. On PostgreSQL,
    // room left in each page lets the lease write be a HOT update (no index touched).
    '007_lighter_account_writes': {
      async up(db: AnyDb) {
        await db.schema.dropIndex('social_accounts_status_expiry_idx').execute();
        await schema.setFillFactor(db, 'social_accounts', 80);
      },
      async down(db: AnyDb) {
        await schema.setFillFactor(db, 'social_accounts', null);
        await db.schema
          .createIndex('social_accounts_status_expiry_idx')
          .on('social_accounts')
          .columns(['status', 'oauth_expires_at'])
          .execute();
      },
    },
    // Issue 11, Instagram. Meta's deauthorize and data-deletion callbacks carry a user id that may be
    // the code exchange's app-scoped `user_id` rather than the `/me` `user_id` the account is keyed
    // on (which one is not documented): the other id is kept here, and a callback matches either.
    '008_i11_ig': {
      async up(db: AnyDb) {
        await db.schema.alterTable('social_accounts').addColumn('alternate_external_id', 'text').execute();
        await db.schema
          .createIndex('social_accounts_alternate_external_idx')
          .on('social_accounts')
          .columns(['provider', 'alternate_external_id'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('social_accounts_alternate_external_idx').execute();
        await db.schema.alterTable('social_accounts').dropColumn('alternate_external_id').execute();
      },
    },
    // Issue 10, item 7: notifications as a durable outbox. A row is written in the commit that
    // writes its ledger event (needs_reauth, revoked, expiring), keyed by that event's id, and
    // deleted never: `state` says whether it still has to be delivered. Any process delivers it
    // (claims move `next_attempt_at` forward, FOR UPDATE SKIP LOCKED on PostgreSQL); attempts and
    // the next try survive restarts. `expires_at` is set only on `account.expiring` rows, and the
    // unique (account_id, expires_at) makes that warning once per grant expiry, whoever sees it first
    // (NULLs never collide, so other types are unaffected).
    '009_i10_outbox': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('notification_outbox')
          .addColumn('event_id', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('account_id', 'text', (c) => c.notNull())
          .addColumn('owner_id', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('external_account_id', 'text', (c) => c.notNull())
          .addColumn('display_name', 'text')
          .addColumn('account_status', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('provider_error_code', 'text')
          .addColumn('expires_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull().defaultTo('pending'))
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
          .addColumn('claimed_by', 'text')
          .addColumn('delivered_at', 'bigint')
          .addColumn('last_error', 'text')
          .addCheckConstraint(
            'notification_outbox_state_check',
            sql`state in ('pending', 'delivered', 'failed')`,
          )
          .execute();
        await db.schema
          .createIndex('notification_outbox_due_idx')
          .on('notification_outbox')
          .columns(['state', 'next_attempt_at'])
          .execute();
        await db.schema
          .createIndex('notification_outbox_expiring_once')
          .on('notification_outbox')
          .columns(['account_id', 'expires_at'])
          .unique()
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('notification_outbox').execute();
      },
    },
    // Issue 13, publishing. One row per video on its way to a platform; see PublicationsTable.
    // Workers find due rows through (status, next_attempt_at) and take them with a lease; the
    // idempotency key is unique per account (NULLs are distinct on both databases).
    '010_i13_publications': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('publications')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('account_id', 'text', (c) => c.notNull())
          .addColumn('provider', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('request_metadata', 'text', (c) => c.notNull())
          .addColumn('media_path', 'text')
          .addColumn('media_owned', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('source_url', 'text')
          .addColumn('total_bytes', 'bigint')
          .addColumn('bytes_sent', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('resumable_state', 'text')
          .addColumn('platform_post_id', 'text')
          .addColumn('platform_ref', 'text')
          .addColumn('url', 'text')
          .addColumn('error_code', 'text')
          .addColumn('error_message', 'text')
          .addColumn('retry_at', 'bigint')
          .addColumn('idempotency_key', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('media_link_hash', 'text')
          .addColumn('media_link_token', 'text')
          .addColumn('media_link_expires_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .addUniqueConstraint('publications_account_idempotency_unique', ['account_id', 'idempotency_key'])
          .addCheckConstraint(
            'publications_status_check',
            sql`status in ('queued', 'uploading', 'processing', 'published', 'sent_to_inbox', 'failed', 'needs_reauth')`,
          )
          .execute();
        await db.schema
          .createIndex('publications_due_idx')
          .on('publications')
          .columns(['status', 'next_attempt_at'])
          .execute();
        await db.schema
          .createIndex('publications_account_created_idx')
          .on('publications')
          .columns(['account_id', 'created_at'])
          .execute();
        await db.schema
          .createIndex('publications_created_idx')
          .on('publications')
          .columns(['created_at', 'id'])
          .execute();
        await db.schema
          .createIndex('publications_media_link_idx')
          .on('publications')
          .columns(['media_link_hash'])
          .execute();
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('publications').execute();
      },
    },
    // Issue 12: which providers exist is the platform registry's business (src/platforms/registry.ts),
    // checked where values come in (config, HTTP schemas, import); a CHECK listing three names
    // made a fourth platform fail at its first insert. Down re-adds it (and fails while rows of
    // another platform exist: delete them first).
    '011_i12_provider_check': {
      async up(db: AnyDb) {
        await schema.dropProviderCheck(db);
      },
      async down(db: AnyDb) {
        await schema.addProviderCheck(db);
      },
    },
  };
}

export function createMigrator(store: StoreDatabase): Migrator {
  const migrations = migrationsFor(dialectOf(store).schema);
  return new Migrator({
    db: store.db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
  });
}

export class MigrationFailed extends Error {
  readonly code = 'migration_failed' as const;
  constructor(name: string | undefined, cause: unknown) {
    super(
      `Migration ${name ?? '(unknown)'} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'MigrationFailed';
  }
}

function check(result: MigrationResultSet): MigrationResultSet {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationFailed(failed?.migrationName, result.error);
  }
  return result;
}

export async function migrateToLatest(store: StoreDatabase): Promise<MigrationResultSet> {
  return check(await createMigrator(store).migrateToLatest());
}

export async function migrateDown(store: StoreDatabase): Promise<MigrationResultSet> {
  return check(await createMigrator(store).migrateDown());
}

export interface MigrationState {
  name: string;
  executedAt: Date | null;
}

export async function migrationStatus(store: StoreDatabase): Promise<MigrationState[]> {
  const list = await createMigrator(store).getMigrations();
  return list.map((m) => ({ name: m.name, executedAt: m.executedAt ?? null }));
}

/** The migration `down` would undo next, or null when none has run. */
export async function lastExecutedMigration(store: StoreDatabase): Promise<string | null> {
  const executed = (await migrationStatus(store)).filter((m) => m.executedAt !== null);
  return executed.at(-1)?.name ?? null;
}
